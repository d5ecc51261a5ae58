"""DARTS in Keras (paper 003's spectrogram branch): the search space, derivation, genotypes.

* the search network has paper 003's Table 3 parameter counts (0.07 / 0.13 / 0.35 M);
* a mixed edge with one-hot architecture weights is its single operation, to the bit, and
  with any weights the softmax-weighted sum of all eight (eq. 2);
* derivation keeps each node's two strongest edges, each with its argmax operation other
  than ``none``;
* a genotype survives JSON and rebuilds the same network; bad genotypes are refused;
* a derived network trains.
"""
import numpy as np
import pytest

from tff_ser import darts
from tff_ser.darts import PRIMITIVES, Genotype, derive_cell, derive_genotype, edge_count


@pytest.mark.parametrize("cells, channels, params, paper", [
    (3, 4, 72_472, 0.07), (3, 6, 132_498, 0.13), (4, 8, 346_316, 0.35)])
def test_search_network_has_paper_003_table_3_parameter_counts(cells, channels, params, paper):
    model = darts.darts_search_network((140, 140), 4, cells=cells, channels=channels, seed=0)
    assert model.count_params() == params
    assert round(params / 1e6, 2) == paper


def test_the_search_network_has_one_theta_per_edge_and_operation_for_each_cell_type():
    model = darts.darts_search_network((24, 24), 4, cells=1, channels=2, seed=0)
    normal, reduce = darts.architecture_variables(model)
    assert tuple(normal.shape) == tuple(reduce.shape) == (edge_count(4), len(PRIMITIVES)) == (14, 8)
    assert not np.array_equal(normal.numpy(), reduce.numpy())
    assert 0 < np.abs(normal.numpy()).max() < 1e-2  # DARTS's 1e-3 * N(0, 1)
    assert darts.reduction_cells(3) == (1, 2)


def test_the_same_seed_builds_the_same_search_network_and_another_seed_another():
    a, b, c = (darts.darts_search_network((24, 24), 4, cells=1, nodes=1, channels=2, seed=s)
               for s in (0, 0, 1))
    for u, v in zip(a.weights, b.weights):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert not np.array_equal(darts.architecture_variables(a)[0].numpy(),
                              darts.architecture_variables(c)[0].numpy())


def _edge_model(channels=4, size=10, stride=1):
    import keras
    from tff_ser.models import SeededInitializers
    init = SeededInitializers(0)
    x = keras.Input((size, size, channels))
    w = keras.Input((1, len(PRIMITIVES)), batch_size=1)
    outs = [darts.operation(op, init, x, channels, stride, False, f"e_{op}") for op in PRIMITIVES]
    mixed = darts.MixedSum(0, name="mix")([w[0]] + outs)
    return keras.Model([x, w], [mixed] + outs)


@pytest.mark.parametrize("stride", [1, 2])
def test_a_mixed_edge_with_one_hot_weights_is_its_single_operation(stride):
    import tensorflow as tf
    model = _edge_model(stride=stride)
    x = np.random.default_rng(0).normal(size=(1, 10, 10, 4)).astype(np.float32)
    for o, op in enumerate(PRIMITIVES):
        theta = np.full((1, 1, len(PRIMITIVES)), -1e4, np.float32)
        theta[0, 0, o] = 0.0
        weights = tf.nn.softmax(theta, axis=-1)  # eq. 1: saturates to exactly one-hot
        assert float(weights[0, 0, o]) == 1.0
        out = model([tf.constant(x), weights], training=True)
        np.testing.assert_array_equal(out[0].numpy(), out[1 + o].numpy(), err_msg=op)


def test_a_mixed_edge_is_the_softmax_weighted_sum_of_all_eight_operations():
    import tensorflow as tf
    model = _edge_model()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 10, 10, 4)).astype(np.float32)
    weights = tf.nn.softmax(rng.normal(size=(1, 1, 8)).astype(np.float32), axis=-1)
    out = [t.numpy() for t in model([tf.constant(x), weights], training=True)]
    expected = sum(float(weights[0, 0, o]) * out[1 + o] for o in range(8))
    np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-6)


def test_derivation_keeps_each_nodes_two_strongest_edges_with_their_best_operation_but_none():
    nodes = 2  # edges: node 0 <- inputs 0, 1; node 1 <- inputs 0, 1, 2
    w = np.full((edge_count(nodes), 8), 0.01)
    none, sep3, maxp, dil5 = (PRIMITIVES.index(op) for op in
                              ("none", "sep_conv_3x3", "max_pool_3x3", "dil_conv_5x5"))
    w[0, none] = 0.9       # `none` is never chosen, however strong
    w[0, sep3] = 0.05
    w[1, maxp] = 0.3
    w[2, dil5] = 0.2       # node 1: input 0 (0.2) and input 2 (0.6) beat input 1 (0.1)
    w[3, sep3] = 0.1
    w[4, maxp] = 0.6
    assert derive_cell(w, nodes) == (("sep_conv_3x3", 0), ("max_pool_3x3", 1),
                                     ("dil_conv_5x5", 0), ("max_pool_3x3", 2))


def test_derive_genotype_softmaxes_theta_per_edge_and_derives_both_cell_types():
    rng = np.random.default_rng(0)
    theta_n, theta_r = rng.normal(size=(14, 8)), rng.normal(size=(14, 8))
    g = derive_genotype(theta_n, theta_r)
    soft = np.exp(theta_n) / np.exp(theta_n).sum(axis=1, keepdims=True)
    assert g.normal == derive_cell(soft)
    assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
    assert len(g.reduce) == 8 and all(op != "none" for op, _ in g.reduce)


def test_a_genotype_survives_json_and_rebuilds_the_same_network(tmp_path):
    g = derive_genotype(*np.random.default_rng(3).normal(size=(2, 14, 8)))
    g.save(tmp_path / "genotype.json")
    assert Genotype.load(tmp_path / "genotype.json") == g
    a = darts.derived_network((24, 24), 4, genotype=g, channels=4, seed=0)
    b = darts.derived_network((24, 24), 4, genotype=str(tmp_path / "genotype.json"),
                              channels=4, seed=0)
    assert a.count_params() == b.count_params()
    for u, v in zip(a.weights, b.weights):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["normal"].__setitem__(0, ["conv_7x7", 0]), "unknown operation"),
    (lambda d: d["normal"].__setitem__(0, ["none", 0]), "unknown operation"),
    (lambda d: d["reduce"].__setitem__(2, ["skip_connect", 3]), "node 1 reads input 3"),
    (lambda d: d["normal"].pop(), "two edges per node"),
    (lambda d: d.pop("reduce_concat"), "missing"),
])
def test_a_bad_genotype_is_refused_with_what_is_wrong(edit, message):
    data = darts.DARTS_V2.to_dict()
    edit(data)
    with pytest.raises(ValueError, match=message):
        Genotype.from_dict(data)


def test_a_missing_genotype_file_says_where_genotypes_come_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="genotype.json"):
        darts.as_genotype(str(tmp_path / "nope.json"))


def test_input_pool_averages_the_spectrogram_first_and_is_checked():
    model = darts.darts_search_network((20, 20), 4, cells=1, channels=2, input_pool=2, seed=0)
    assert model.get_layer("input_pool").output.shape[1:3] == (10, 10)
    with pytest.raises(ValueError, match="input_pool must be an integer from 1 to 20"):
        darts.darts_search_network((20, 20), 4, cells=1, channels=2, input_pool=0)


def test_a_derived_network_trains():
    import keras
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 64)
    x = rng.normal(size=(64, 16, 16)).astype(np.float32)
    t = np.arange(16)
    # each class a texture the global pooling can see: stripes of its own period in time
    x += 2.0 * np.sin(2 * np.pi * t / (2 + y[:, None]))[:, :, None]
    model = darts.derived_network((16, 16), 4, cells=2, channels=4, seed=0)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert loss < 0.5 * before and accuracy > 0.9


def test_a_genotype_reads_as_a_table_of_edges():
    from tff_ser.darts import DARTS_V2
    frame = DARTS_V2.to_frame()
    assert len(frame) == len(DARTS_V2.normal) + len(DARTS_V2.reduce) == 16
    assert frame.iloc[0].to_dict() == {"cell": "normal", "node": 0, "input": "c_{k-2}",
                                       "operation": "sep_conv_3x3"}
    # DARTS_V2's last normal edge: node 3 reads node 0 through a dilated 3x3 convolution
    assert frame.iloc[7].to_dict() == {"cell": "normal", "node": 3, "input": "node 0",
                                       "operation": "dil_conv_3x3"}
    assert list(frame[frame.cell == "reduce"]["node"]) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_architecture_weights_label_theta_rows_as_derivation_reads_them_and_mark_its_picks():
    import matplotlib.patches
    from types import SimpleNamespace

    from tff_ser.nas import architecture_weights
    from tff_ser.plots import plot_architecture_weights
    nodes = 2
    assert darts.edge_labels(nodes) == ("node 0 <- c_{k-2}", "node 0 <- c_{k-1}",
                                        "node 1 <- c_{k-2}", "node 1 <- c_{k-1}",
                                        "node 1 <- node 0")
    rng = np.random.default_rng(1)
    theta = {kind: rng.normal(size=(edge_count(nodes), 8)) for kind in ("normal", "reduce")}
    theta["normal"][4, PRIMITIVES.index("dil_conv_5x5")] = 9.0  # node 1 <- node 0, dil 5x5
    g = derive_genotype(theta["normal"], theta["reduce"], nodes)
    result = SimpleNamespace(final_metrics={"search": {
        "genotype": g.to_dict(), **{f"alpha_{k}": v.tolist() for k, v in theta.items()}}})
    frames = architecture_weights(result)
    assert list(frames) == ["normal", "reduce"]
    np.testing.assert_allclose(frames["normal"].to_numpy().sum(axis=1), 1.0)
    assert list(frames["normal"].columns) == list(PRIMITIVES)
    # the genotype's picks name rows and columns of the frames, and are their derivation
    assert ("node 1 <- node 0", "dil_conv_5x5") in g.picks("normal")
    for kind, frame in frames.items():
        picks = g.picks(kind)
        assert len(picks) == 2 * nodes
        for edge, op in picks:  # each pick is its row's strongest operation other than none
            assert frame.loc[edge, op] == frame.loc[edge].drop("none").max()
    fig = plot_architecture_weights(frames, picks={k: g.picks(k) for k in frames})
    boxes = [p for ax in fig.axes for p in ax.patches
             if isinstance(p, matplotlib.patches.Rectangle)]
    assert len(boxes) == 2 * 2 * nodes
    with pytest.raises(ValueError, match="no architecture weights"):
        plot_architecture_weights({})
