"""Paper 002's knowledge distillation: its loss, and a student trained centralized and federated.

Claims checked:
* the KD loss is paper 002's Eqs. 1-6 (a hand computation in NumPy on a fixed batch);
* federated KD with alpha = 0 and no feature loss *is* FedAvg of the student (tf engine, bit for bit),
  and so is centralized KD of the same settings against ``model.fit`` (to float rounding);
* with the feature loss and a projection (student embedding 8, teacher 16) the student trains,
  the same seed gives the same run, a run resumes from its checkpoint to the same weights, and
  the deployed student is the model alone;
* engines without a teacher-guided loss refuse a distillation task, saying where it runs.
"""
import dataclasses

import numpy as np
import pytest

import keras

from helpers import synthetic_task
from tff_ser.centralized import CentralizedConfig, train_centralized
from tff_ser.distillation import (DistillationTask, KDConfig, TeacherOutputs, distillation_task,
                                  kd_loss, teacher_outputs)
from tff_ser.engines.base import EngineUnsupported, choose_engine
from tff_ser.fedconfig import FederatedConfig
from tff_ser.federated import train_federated
from tff_ser.models import KerasModel


def _net(width: int, name: str):
    def build(input_shape, num_classes, seed=None):
        def init(i):
            return keras.initializers.GlorotUniform(seed=None if seed is None else seed + i)
        return keras.Sequential([
            keras.Input(input_shape),
            keras.layers.Dense(width, "relu", kernel_initializer=init(0), name="embedding_layer"),
            keras.layers.Dense(num_classes, "softmax", kernel_initializer=init(1), name="softmax"),
        ], name=name)
    build.__name__ = name
    return KerasModel(build, name=name)


TEACHER, STUDENT, STUDENT_16 = _net(16, "teacher"), _net(8, "student"), _net(16, "student16")
CONFIG = FederatedConfig(rounds=3, local_epochs=1, batch_size=8, client_fraction=0.5,
                         client_lr=1e-2, server_lr=1e-2, seed=3, eval_every=0)


def _teacher(task, kd=KDConfig()):
    trained = train_federated(task, CONFIG, progress=False, engine="tf", federated_eval=False)
    model = TEACHER.build(task.input_shape, task.num_classes, seed=0)
    model.set_weights(trained.weights[0] + trained.weights[1])
    return teacher_outputs(model, task.x, kd)


@pytest.fixture(scope="module")
def task():
    return synthetic_task(model=TEACHER, per_client=24)


@pytest.fixture(scope="module")
def teacher(task):
    return _teacher(task)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_the_kd_loss_is_paper_002_eqs_1_to_6_by_hand():
    rng = np.random.default_rng(0)
    ps, pt = _softmax(rng.normal(size=(5, 4))), _softmax(rng.normal(size=(5, 4)))
    fs, ft = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    y = np.array([0, 3, 1, 2, 3])
    kd = KDConfig(alpha=0.3, temperature=2.0, feature_weight=0.7)
    soft_s, soft_t = _softmax(np.log(ps) / 2.0), _softmax(np.log(pt) / 2.0)      # Eq. 1
    l_kl = np.mean(np.sum(soft_t * np.log(soft_t / soft_s), axis=1))              # Eq. 2
    l_ce = -np.mean(np.log(ps[np.arange(5), y]))                                   # Eq. 3
    l_feature = np.mean(np.sum((ft - fs) ** 2, axis=1) / 6)                        # Eq. 5
    want = 0.3 * l_kl + 0.7 * l_ce + 0.7 * l_feature                               # Eqs. 4, 6
    got = float(kd_loss(y, ps, pt, kd, student_features=fs, teacher_features=ft))
    assert got == pytest.approx(want, rel=1e-5)
    # the softened teacher differs from the hard one, and T = 1 gives back the plain KL
    assert float(kd_loss(y, ps, pt, KDConfig(alpha=1.0, temperature=1.0, feature_weight=0))) \
        == pytest.approx(np.mean(np.sum(pt * np.log(pt / ps), axis=1)), rel=1e-5)


def test_kd_config_refuses_values_outside_the_loss():
    for bad in (dict(alpha=1.5), dict(temperature=0.0), dict(feature_weight=-1.0)):
        with pytest.raises(ValueError):
            KDConfig(**bad)


def test_federated_kd_with_alpha_0_and_no_feature_loss_is_fedavg_of_the_student(task, teacher):
    plain = train_federated(dataclasses.replace(task, model=STUDENT), CONFIG,
                            progress=False, engine="tf", federated_eval=False)
    kd = distillation_task(task, STUDENT, teacher, KDConfig(alpha=0.0, feature_weight=0.0))
    distilled = train_federated(kd, CONFIG, progress=False, engine="auto", federated_eval=False)
    assert distilled.config["engine"] == "tf"
    for a, b in zip(plain.weights[0], distilled.weights[0]):
        np.testing.assert_array_equal(a, b)
    assert distilled.config["task"]["distillation"]["alpha"] == 0.0


def test_centralized_kd_with_alpha_0_and_no_feature_loss_is_the_students_fit(task, teacher):
    config = CentralizedConfig(epochs=2, batch_size=8, lr=1e-2, seed=1, eval_every=0)
    plain = train_centralized(dataclasses.replace(task, model=STUDENT), config,
                              progress=False)
    kd = distillation_task(task, STUDENT, teacher, KDConfig(alpha=0.0, feature_weight=0.0))
    distilled = train_centralized(kd, config, progress=False)
    for a, b in zip(plain.weights[0], distilled.weights[0]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert distilled.final_metrics["train_loss"] == pytest.approx(
        plain.final_metrics["train_loss"], rel=1e-5)


def test_the_teacher_changes_the_student_and_a_seed_repeats_its_run(task, teacher):
    plain = distillation_task(task, STUDENT, teacher, KDConfig(alpha=0.0, feature_weight=0.0))
    full = distillation_task(task, STUDENT, teacher, KDConfig(alpha=0.5, feature_weight=1.0))
    a = train_federated(full, CONFIG, progress=False, engine="tf", federated_eval=False)
    b = train_federated(full, CONFIG, progress=False, engine="tf", federated_eval=False)
    c = train_federated(plain, CONFIG, progress=False, engine="tf", federated_eval=False)
    for x, y in zip(a.weights[0], b.weights[0]):
        np.testing.assert_array_equal(x, y)
    assert max(float(np.max(np.abs(x - y))) for x, y in zip(a.weights[0], c.weights[0])) > 1e-4
    # the deployed student is the model alone: the 8 -> 16 projection is not in its weights
    assert [w.shape for w in a.weights[0]] == [w.shape for w in c.weights[0]]
    assert "validation" in a.final_metrics


def test_a_distillation_run_resumes_from_its_checkpoint_to_the_same_weights(task, teacher,
                                                                              tmp_path):
    full = distillation_task(task, STUDENT, teacher, KDConfig())
    straight = train_federated(full, CONFIG, progress=False, engine="tf", federated_eval=False)
    short = dataclasses.replace(CONFIG, rounds=2)
    train_federated(full, short, progress=False, engine="tf", federated_eval=False,
                    checkpoint_dir=str(tmp_path))
    resumed = train_federated(full, CONFIG, progress=False, engine="tf", federated_eval=False,
                              checkpoint_dir=str(tmp_path))
    assert resumed.times["resumed_from_round"] == 2
    for x, y in zip(straight.weights[0], resumed.weights[0]):
        np.testing.assert_array_equal(x, y)


def test_equal_embedding_sizes_need_no_projection_and_centralized_kd_trains(task, teacher):
    kd = distillation_task(task, STUDENT_16, teacher, KDConfig())
    result = train_centralized(kd, CentralizedConfig(epochs=2, batch_size=8, lr=1e-2, seed=0,
                                                     eval_every=0), progress=False)
    assert np.isfinite(result.final_metrics["train_loss"])
    assert result.final_metrics["validation"]["accuracy"] > 0.3


def test_engines_without_a_teacher_guided_loss_refuse_a_distillation_task(task, teacher):
    kd = distillation_task(task, STUDENT, teacher)
    for engine in ("batched", "tff"):
        with pytest.raises(EngineUnsupported, match="distillation"):
            choose_engine(kd, CONFIG, engine)
    assert choose_engine(kd, CONFIG, "auto") == "tf"


def test_a_distillation_task_refuses_teacher_outputs_of_other_clips(task, teacher):
    short = TeacherOutputs(teacher.probabilities[:10], teacher.embeddings[:10])
    with pytest.raises(ValueError, match="compute teacher_outputs on this task's x"):
        distillation_task(task, STUDENT, short)
    with pytest.raises(ValueError, match="needs the teacher's embeddings"):
        distillation_task(task, STUDENT, TeacherOutputs(teacher.probabilities), KDConfig())
    with pytest.raises(TypeError, match="teacher=TeacherOutputs"):
        DistillationTask(model=STUDENT, x=task.x, y=task.y, train_clients=task.train_clients,
                         val_clients=task.val_clients)
    with pytest.raises(ValueError, match="has no layer 'pool'"):
        teacher_outputs(TEACHER.build(task.input_shape, 4, seed=0), task.x,
                        KDConfig(teacher_layer="pool"))


def test_paper_002_students_are_lighter_than_their_teachers_with_the_teachers_embedding_size():
    from tff_ser.models import build_model, count_params
    for student, teacher, params in (("conv1d_student", "conv1d", 800_484),
                                     ("dense_student", "dense", 6_438_276)):
        assert count_params(student) == params
        assert params < 0.45 * count_params(teacher)
        s, t = build_model(student), build_model(teacher)
        assert s.get_layer("embedding_layer").output.shape[-1] \
            == t.get_layer("embedding_layer").output.shape[-1]


def test_paper002_experiment_distils_and_a_fresh_clone_retrains_the_teacher_to_the_same_numbers(
        tmp_path):
    """The teacher's weights are not committed: a student trained later (a fresh clone) gets its
    teacher retrained first, to the same weights, so the student's numbers repeat."""
    from tff_ser.baselines.paper002.configs import PAPER002_KD_QUICK
    from tff_ser.experiments.configs import with_overrides
    from tff_ser.experiments.runner import WEIGHTS_FILE, run_experiment
    config = with_overrides(PAPER002_KD_QUICK, rounds=1)
    first = run_experiment(config, tmp_path, progress=False)
    student = "conv1d_student-federated_kd-s0"
    assert set(first.results) == {s.run_id for s in config.runs()}
    assert first.results[student].config["task"]["distillation"]["teacher"] \
        == "conv1d-federated-s0"
    runs = tmp_path / "runs"
    assert (runs / "conv1d-federated-s0" / WEIGHTS_FILE).is_file()
    assert (runs / student / WEIGHTS_FILE).is_file()  # the distilled student's (notebook 08)
    assert not (runs / "conv1d_student-federated_kd_logits-s0" / WEIGHTS_FILE).exists()
    (runs / "conv1d-federated-s0" / WEIGHTS_FILE).unlink()
    (runs / student / "result.json").unlink()
    again = run_experiment(config, tmp_path, progress=False, only=[student])
    assert "conv1d-federated-s0" not in again.reused and student not in again.reused
    assert again.results[student].final_metrics["validation"]["confusion_matrix"] \
        == first.results[student].final_metrics["validation"]["confusion_matrix"]
    assert "Paper 002 Table II" in (tmp_path / "summary.md").read_text()
