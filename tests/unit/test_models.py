"""The papers' models: exact sizes of paper 001's Figs 4-6, softmax outputs, seeds."""
import random

import numpy as np
import pytest
import tensorflow as tf

from tff_ser.layers import ReproducibleDropout

from tff_ser.models import FEATURE_SHAPES, MODELS, build_model, count_params

# (layer name, output shape, parameters), read off paper 001's Keras summaries.
FIG4_DENSE = [
    ("conv1d", (None, 98, 512), 52736),
    ("dropout", (None, 98, 512), 0),
    ("flatten", (None, 50176), 0),
    ("dense", (None, 512), 25690624),
    ("dropout_1", (None, 512), 0),
    ("embedding_layer", (None, 512), 262656),
    ("dropout_2", (None, 512), 0),
    ("softmax", (None, 4), 2052),
]
FIG5_LSTM = [
    ("lstm", (None, 100, 512), 1120256),
    ("lstm_1", (None, 512), 2099200),
    ("embedding_layer", (None, 512), 262656),
    ("softmax", (None, 4), 2052),
]
FIG6_CONV = [
    ("conv1d", (None, 98, 512), 52736),
    ("dropout", (None, 98, 512), 0),
    ("conv1d_1", (None, 96, 128), 196736),
    ("dropout_1", (None, 96, 128), 0),
    ("conv1d_2", (None, 94, 128), 49280),
    ("dropout_2", (None, 94, 128), 0),
    ("conv1d_3", (None, 92, 64), 24640),
    ("dropout_3", (None, 92, 64), 0),
    ("flatten", (None, 5888), 0),
    ("embedding_layer", (None, 256), 1507584),
    ("dropout_4", (None, 256), 0),
    ("softmax", (None, 4), 1028),
]


def _layers(model):
    return [(layer.name, tuple(layer.output.shape), layer.count_params()) for layer in model.layers]


def test_dense_model_has_26_008_068_params():
    assert count_params("dense") == 26_008_068


def test_conv1d_model_has_1_832_004_params():
    assert count_params("conv1d") == 1_832_004


def test_lstm_model_has_3_484_164_params():
    assert count_params("lstm") == 3_484_164


@pytest.mark.parametrize("name, table", [("dense", FIG4_DENSE), ("lstm", FIG5_LSTM),
                                         ("conv1d", FIG6_CONV)])
def test_paper_001_models_match_their_figure_layer_by_layer(name, table):
    assert _layers(build_model(name)) == table


def test_mlp_is_paper_000s_256_128_relu_with_dropout_02():
    model = build_model("mlp")
    dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)]
    drops = [l for l in model.layers if isinstance(l, ReproducibleDropout)]
    assert [l.units for l in dense] == [256, 128, 4]
    assert [l.activation.__name__ for l in dense] == ["relu", "relu", "softmax"]
    assert [l.rate for l in drops] == [0.2, 0.2]
    assert model.input_shape == (None, 136)
    assert model.count_params() == 136 * 256 + 256 + 256 * 128 + 128 + 128 * 4 + 4


def test_mlp_output_size_follows_num_classes():
    assert build_model("mlp", num_classes=6).output_shape == (None, 6)


def test_cnn_logmel_has_one_conv_one_max_pool_two_fc_and_softmax():
    model = build_model("cnn_logmel")
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds.count("Conv2D") == 1 and kinds.count("MaxPooling2D") == 1
    dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)]
    assert [l.activation.__name__ for l in dense] == ["relu", "relu", "softmax"]
    assert model.input_shape == (None, 300, 40)


def test_lstm_logmel_has_one_lstm_two_fc_and_softmax():
    model = build_model("lstm_logmel")
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds.count("LSTM") == 1
    dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)]
    assert [l.activation.__name__ for l in dense] == ["relu", "relu", "softmax"]
    assert model.input_shape == (None, 300, 40)


def test_logmel_models_stay_small_enough_for_cpu_federated_training():
    assert count_params("cnn_logmel") < 2_000_000
    assert count_params("lstm_logmel") < 200_000


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_outputs_softmax_probabilities(name):
    spec = MODELS[name]
    model = build_model(name, seed=0)
    x = np.random.default_rng(0).normal(size=(3,) + spec.input_shape).astype(np.float32)
    probs = model(x, training=False).numpy()
    assert probs.shape == (3, 4)
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registry_shapes_are_the_feature_kinds_shapes(name):
    spec = MODELS[name]
    assert spec.name == name
    assert spec.input_shape == FEATURE_SHAPES[spec.feature_kind]
    assert build_model(name).input_shape == (None,) + spec.input_shape


def test_paper_001_models_carry_an_embedding_layer():
    for name in ("dense", "conv1d", "lstm"):
        assert build_model(name).get_layer("embedding_layer") is not None


def test_each_call_builds_a_fresh_uncompiled_model():
    a, b = build_model("mlp"), build_model("mlp")
    assert a is not b
    assert a.weights[0] is not b.weights[0]
    assert getattr(a, "optimizer", None) is None
    assert not (getattr(a, "compiled", False) or getattr(a, "_is_compiled", False))


def test_same_seed_gives_the_same_initial_weights():
    for name in ("mlp", "conv1d", "lstm_logmel"):
        a = build_model(name, seed=7).get_weights()
        b = build_model(name, seed=7).get_weights()
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_different_seeds_give_different_kernels():
    a = build_model("lstm_logmel", seed=1).get_weights()
    b = build_model("lstm_logmel", seed=2).get_weights()
    kernels = [(x, y) for x, y in zip(a, b) if x.ndim >= 2]
    assert kernels and not any(np.array_equal(x, y) for x, y in kernels)


def test_no_seed_gives_fresh_random_weights():
    a, b = build_model("mlp").get_weights(), build_model("mlp").get_weights()
    assert not np.array_equal(a[0], b[0])


def test_seeded_layers_of_equal_shape_do_not_share_initial_values():
    # Keras repeats one seeded initializer's values in every variable it makes.
    model = build_model("mlp", input_shape=(64,), hidden_units=(64, 64), seed=3)
    first, second = [w for w in model.get_weights() if w.shape == (64, 64)]
    assert not np.array_equal(first, second)


@pytest.mark.tff
def test_seeded_weights_are_the_same_when_built_inside_a_graph():
    # TFF calls model_fn while tracing a graph; the seed must mean the same there.
    eager = build_model("mlp", seed=11).get_weights()[0]
    with tf.Graph().as_default():
        model = build_model("mlp", seed=11)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            graph = session.run(model.weights[0])
    np.testing.assert_array_equal(eager, graph)


def test_building_with_a_seed_leaves_global_random_state_alone():
    np.random.seed(0)
    random.seed(0)
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    tf.random.set_seed(123)
    expected = tf.random.uniform([4]).numpy()
    tf.random.set_seed(123)
    build_model("conv1d", seed=5)
    assert np.array_equal(tf.random.uniform([4]).numpy(), expected)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="known models: .*cnn_logmel.*dense.*lstm.*mlp"):
        build_model("resnet")


def test_wrong_input_rank_is_refused_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(time, features\)"):
        build_model("dense", input_shape=(136,))
    with pytest.raises(ValueError, match=r"\(features,\)"):
        build_model("mlp", input_shape=(100, 34))


def test_bad_num_classes_and_seed_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp", num_classes=1)
    with pytest.raises(ValueError, match="seed"):
        build_model("mlp", seed=-1)


def test_hyperparameters_reach_the_builder_and_unknown_ones_are_refused():
    model = build_model("dense", dropout_rate=0.3)
    assert {l.rate for l in model.layers if isinstance(l, ReproducibleDropout)} == {0.3}
    assert count_params("mlp", hidden_units=(64,)) == 136 * 64 + 64 + 64 * 4 + 4
    with pytest.raises(ValueError, match="does not take"):
        build_model("lstm", dropout_rate=0.2)
    with pytest.raises(ValueError, match="dropout_rate"):
        build_model("mlp", dropout_rate=1.0)


def test_other_input_lengths_are_accepted():
    assert build_model("conv1d", input_shape=(50, 34)).output_shape == (None, 4)
    assert build_model("lstm_logmel", input_shape=(120, 40)).output_shape == (None, 4)


def test_mlp_learns_a_separable_problem_with_probability_loss():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=256)
    x = rng.normal(size=(256, 136)).astype(np.float32)
    x[np.arange(256), y] += 4.0  # class k lifts feature k
    model = build_model("mlp", seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=False),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
