"""A model of the user's own: a value, no registry; caches never mix two models up."""
import numpy as np
import pytest
import keras

from helpers import synthetic_task
from tff_ser import models
from tff_ser.centralized import CentralizedConfig, train_centralized
from tff_ser.engines.base import EngineUnsupported, choose_engine
from tff_ser.fedconfig import FederatedConfig
from tff_ser.federated import train_federated
from tff_ser.models import KerasModel


def tiny(input_shape, num_classes):
    return keras.Sequential([keras.Input(input_shape),
                                keras.layers.Dense(16, activation="relu"),
                                keras.layers.Dense(num_classes, activation="softmax")])


def wider(input_shape, num_classes):
    return keras.Sequential([keras.Input(input_shape),
                                keras.layers.Dense(24, activation="tanh"),
                                keras.layers.Dense(num_classes, activation="softmax")])


def functional(input_shape, num_classes):
    x = keras.Input(input_shape)
    h = keras.layers.Dense(16, activation="relu")(x)
    h = keras.layers.Concatenate()([h, keras.layers.Dense(8)(x)])
    return keras.Model(x, keras.layers.Dense(num_classes, activation="softmax")(h))


def test_same_seed_same_initial_weights_without_a_seed_parameter_and_no_global_state_leak():
    m = KerasModel(tiny)
    state = np.random.get_state()
    a, b, c = m.build((136,), 4, seed=1), m.build((136,), 4, seed=1), m.build((136,), 4, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    assert np.array_equal(np.random.get_state()[1], state[1])


def test_a_builder_returning_no_keras_model_is_refused():
    with pytest.raises(TypeError, match="not a keras.Model"):
        KerasModel(lambda shape, n: "nope", name="bad").build((4,), 4)
    with pytest.raises(TypeError, match="preset name"):
        synthetic_task(model=42)


@pytest.mark.parametrize("engine", ["tff", "tf", "batched"])
def test_a_custom_model_trains_federated_on_every_engine_and_centralized(engine):
    task = synthetic_task(model=KerasModel(tiny, name="tiny"))
    fed = train_federated(task, FederatedConfig(rounds=3, client_lr=0.01), progress=False,
                          engine=engine)
    assert fed.config["model"] == "tiny" and fed.config["engine"] == engine
    assert fed.final_metrics["validation"]["accuracy"] > 0.5
    base = train_centralized(task, CentralizedConfig(epochs=3))
    assert base.config["model"] == "tiny" and base.final_metrics["validation"]["accuracy"] > 0.5


@pytest.mark.tff
def test_the_tf_engine_equals_tff_for_a_functional_custom_model():
    """Dropout off (there is none): weights after 2 rounds agree to 1e-5."""
    task = synthetic_task(model=KerasModel(functional, name="functional"))
    config = FederatedConfig(rounds=2, client_lr=1e-3, server_lr=1e-3, batch_size=8,
                             client_fraction=0.5, seed=4)
    assert choose_engine(task, config) == "tf"
    a = train_federated(task, config, progress=False, engine="tff")
    b = train_federated(task, config, progress=False, engine="tf")
    moved = max(float(np.max(np.abs(x - y))) for x, y in
                zip(a.weights[0], train_federated(task, FederatedConfig(rounds=1, seed=4,
                    client_lr=1e-12, server_lr=1e-12), progress=False, engine="tf").weights[0]))
    assert moved > 1e-4
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a.weights[0], b.weights[0]))
    assert diff < 1e-5


@pytest.mark.tff
def test_two_models_under_one_name_never_share_a_process_or_an_eval_model():
    from tff_ser.engines.tff_process import build_processes
    a, b = KerasModel(tiny, name="mine"), KerasModel(wider, name="mine")
    pa, _ = build_processes(a, (136,), 4, FederatedConfig())
    pb, _ = build_processes(b, (136,), 4, FederatedConfig())
    assert pa is not pb
    assert build_processes(a, (136,), 4, FederatedConfig())[0] is pa  # cached per object
    ra = train_federated(synthetic_task(model=a), FederatedConfig(rounds=1), engine="tff",
                         progress=False)
    rb = train_federated(synthetic_task(model=b), FederatedConfig(rounds=1), engine="tff",
                         progress=False)
    assert [w.shape for w in ra.weights[0]] != [w.shape for w in rb.weights[0]]


@pytest.mark.tff
def test_a_preset_name_registered_again_is_a_new_model(monkeypatch):
    from tff_ser.engines.tff_process import build_processes
    first = build_processes("mlp", (136,), 4, FederatedConfig())[0]
    spec = models.get_spec("mlp")
    import dataclasses
    monkeypatch.setitem(models.MODELS, "mlp", dataclasses.replace(
        spec, builder=lambda shape, n, *, seed=None: tiny(shape, n)))
    second = build_processes("mlp", (136,), 4, FederatedConfig())[0]
    assert second is not first
    r = train_federated(synthetic_task(), FederatedConfig(rounds=1), engine="tff", progress=False)
    assert [w.shape for w in r.weights[0]] == [(136, 16), (16,), (16, 4), (4,)]


def _logits_model():
    def loss():
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def logits(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(num_classes)])

    return KerasModel(logits, name="logits", loss=loss,
                      metrics=lambda: [keras.metrics.SparseTopKCategoricalAccuracy(k=2)])


def test_a_custom_loss_and_metrics_train_on_the_tf_engine():
    task = synthetic_task(model=_logits_model())
    config = FederatedConfig(rounds=2, client_lr=0.01)
    assert choose_engine(task, config) == "tf"
    with pytest.raises(EngineUnsupported, match="own loss"):
        choose_engine(task, config, "batched")
    r = train_federated(task, config, progress=False)
    assert r.config["engine"] == "tf"
    assert 0.0 <= r.history[-1]["train_sparse_top_k_categorical_accuracy"] <= 1.0
    assert r.final_metrics["validation"]["accuracy"] > 0.5


@pytest.mark.tff
def test_the_tf_engine_equals_tff_for_a_custom_loss_and_metric():
    """Logits with from_logits=True and a top-2 metric: weights to 1e-5, metrics to 1e-6."""
    task = synthetic_task(model=_logits_model())
    config = FederatedConfig(rounds=2, client_lr=0.01, batch_size=8, client_fraction=0.5, seed=2)
    a = train_federated(task, config, progress=False, engine="tff")
    b = train_federated(task, config, progress=False, engine="tf")
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a.weights[0], b.weights[0]))
    assert diff < 1e-5
    for ra, rb in zip(a.history, b.history):
        for key in ("train_loss", "train_accuracy", "train_sparse_top_k_categorical_accuracy"):
            assert abs(ra[key] - rb[key]) < 1e-5, key
