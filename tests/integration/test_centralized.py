"""The centralized baseline's checkpoint: a killed or interrupted run resumes to the same run.

Claims checked:
* a centralized run SIGKILLed after some epochs and started again with the
  same arguments resumes from its last saved epoch and ends with the same
  per-epoch losses, held-out metrics and weights as a run never stopped
  (paper 000's MLP, whose dropout masks are a function of the batch);
* Ctrl-C or SIGTERM between epochs says which epochs are saved and how to
  resume, and the resumed run ends the same;
* a distilled student (paper 002) resumes with its projection and optimizer;
* a saved run is extended by more epochs, and other settings are refused.
"""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import sigkill_once_saved, synthetic_task
from tff_ser import errors
from tff_ser.centralized import CentralizedConfig, train_centralized

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = CentralizedConfig(epochs=6, batch_size=8, lr=0.01, seed=3)

RUN_SCRIPT = r"""
import json, sys
sys.path[:0] = [{tests!r}]
import numpy as np
from helpers import sigkill_once_saved, synthetic_task
from tff_ser.centralized import CentralizedConfig, train_centralized
ck, out = sys.argv[1], sys.argv[2]
task = synthetic_task(per_client=150)
r = train_centralized(task, CentralizedConfig(epochs=40, batch_size=8, lr=0.003, seed=5),
                      checkpoint_dir=ck, progress=False, threads=1)
json.dump({{"final": r.final_metrics["validation"], "resumed": r.times["resumed_from_round"],
           "losses": [h["train_loss"] for h in r.history],
           "weights": [w.tolist() for w in r.weights[0]]}}, open(out, "w"))
"""


def _run(ck, out):
    script = RUN_SCRIPT.format(tests=os.path.dirname(HERE))
    return subprocess.Popen([sys.executable, "-c", script, str(ck), str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_centralized_run_killed_mid_way_resumes_and_ends_like_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight.json"
    proc = _run(tmp_path / "ck_straight", straight)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]

    ck = tmp_path / "ck_killed"
    proc = _run(ck, tmp_path / "never.json")
    sigkill_once_saved(proc, ck / "history.json", 3, poll=0.01)
    assert not (tmp_path / "never.json").exists()

    resumed = tmp_path / "resumed.json"
    proc = _run(ck, resumed)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    # history is written before the state: a kill between them leaves it one epoch ahead
    assert 2 <= b["resumed"] < 40, "the restarted run did not resume mid-way"
    assert b["losses"] == a["losses"]
    assert b["final"] == a["final"]
    assert b["weights"] == a["weights"]


def _assert_resumed_the_same(resumed, straight, *, resumed_from: int):
    """``resumed`` picked up after epoch ``resumed_from`` and ended as ``straight`` did."""
    assert resumed.times["resumed_from_round"] == resumed_from
    assert [h["train_loss"] for h in resumed.history] == \
        [h["train_loss"] for h in straight.history]
    assert resumed.final_metrics["validation"] == straight.final_metrics["validation"]
    for x, y in zip(straight.weights[0] + straight.weights[1],
                    resumed.weights[0] + resumed.weights[1]):
        np.testing.assert_array_equal(x, y)


def test_an_interrupt_between_epochs_says_what_is_saved_and_the_rerun_ends_the_same(
        tmp_path, monkeypatch):
    task = synthetic_task()
    straight = train_centralized(task, CONFIG, progress=False)
    calls = []

    def stop_before_epoch_3():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("SIGTERM")

    ck = str(tmp_path / "ck")
    monkeypatch.setattr(errors, "check_stop_requested", stop_before_epoch_3)
    with pytest.raises(errors.TrainingInterrupted,
                       match=r"interrupted in epoch 3 of 6; epochs 1..2 are saved in .*ck: run "
                             "the same command again"):
        train_centralized(task, CONFIG, progress=False, checkpoint_dir=ck)
    monkeypatch.undo()
    assert len(json.loads(open(os.path.join(ck, "history.json")).read())) == 2

    resumed = train_centralized(task, CONFIG, progress=False, checkpoint_dir=ck)
    _assert_resumed_the_same(resumed, straight, resumed_from=2)
    # its wall time counts the first process's epochs too
    assert resumed.times["wall_seconds"] > resumed.times["wall_seconds_this_process"]


def test_a_saved_run_is_extended_by_more_epochs_and_other_settings_are_refused(tmp_path):
    task = synthetic_task()
    straight = train_centralized(task, CONFIG, progress=False)
    ck = str(tmp_path / "ck")
    train_centralized(task, dataclasses.replace(CONFIG, epochs=4), progress=False,
                      checkpoint_dir=ck)
    extended = train_centralized(task, CONFIG, progress=False, checkpoint_dir=ck)
    assert extended.times["resumed_from_round"] == 4
    assert extended.final_metrics["validation"] == straight.final_metrics["validation"]
    with pytest.raises(ValueError, match=r"differs in \['lr'\]"):
        train_centralized(task, dataclasses.replace(CONFIG, lr=0.1), progress=False,
                          checkpoint_dir=ck)
    with pytest.raises(ValueError, match="saved after 6 rounds .epochs., past the 5 asked for"):
        train_centralized(task, dataclasses.replace(CONFIG, epochs=5), progress=False,
                          checkpoint_dir=ck)


def test_a_corrupt_centralized_state_is_named_with_what_to_do(tmp_path):
    task = synthetic_task()
    ck = tmp_path / "ck"
    train_centralized(task, dataclasses.replace(CONFIG, epochs=1), progress=False,
                      checkpoint_dir=str(ck))
    (ck / "centralized_state.npz").write_bytes(b"not a zip file")
    with pytest.raises(errors.CorruptFile, match="centralized_state.npz is unreadable.*Delete "
                                                 "the folder"):
        train_centralized(task, CONFIG, progress=False, checkpoint_dir=str(ck))


def _net(width: int, name: str):
    import keras
    from tff_ser.models import KerasModel

    def build(input_shape, num_classes, seed=None):
        return keras.Sequential([
            keras.Input(input_shape),
            keras.layers.Dense(width, "relu", name="embedding_layer",
                               kernel_initializer=keras.initializers.GlorotUniform(seed)),
            keras.layers.Dense(num_classes, "softmax", name="softmax",
                               kernel_initializer=keras.initializers.GlorotUniform(seed + 1)),
        ], name=name)
    return KerasModel(build, name=name)


def test_a_distilled_student_resumes_with_its_projection_and_optimizer(tmp_path):
    from tff_ser.distillation import KDConfig, distillation_task, teacher_outputs
    task = synthetic_task(per_client=24)
    teacher = _net(16, "teacher").build(task.input_shape, task.num_classes, seed=1)
    # student embedding 8, teacher 16: a learned projection trains beside the student
    kd = distillation_task(task, _net(8, "student"), teacher_outputs(teacher, task.x, KDConfig()))
    config = CentralizedConfig(epochs=3, batch_size=8, lr=0.01, seed=2)
    straight = train_centralized(kd, config, progress=False)
    ck = str(tmp_path / "ck")
    train_centralized(kd, dataclasses.replace(config, epochs=2), progress=False,
                      checkpoint_dir=ck)
    resumed = train_centralized(kd, config, progress=False, checkpoint_dir=ck)
    _assert_resumed_the_same(resumed, straight, resumed_from=2)
