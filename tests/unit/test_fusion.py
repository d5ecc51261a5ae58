"""Paper 003's second stream and its fusion: attention pooling over frames, the (8, 8), (8, 4),
(4, 4) decision-level perceptron, feature-level fusion, and feature sets lined up by clip.

* attention pooling is a convex combination of the frames, blind to their order;
* the fusion perceptron has paper 003's sizes (128 parameters);
* two branches that each know half of the answer, fused, know all of it;
* clips one feature kind lacks are dropped from every set and listed, never lost silently.
"""
import numpy as np
import pytest

from tff_ser.corpus.records import Clip
from tff_ser.distillation import TeacherOutputs
from tff_ser.features.pipeline import FeatureSet, common_clips
from tff_ser.fusion import fusion_task
from tff_ser.models import build_model, count_params
from tff_ser.task import Task


def test_attention_pooling_is_a_convex_combination_of_the_frames_blind_to_their_order():
    import tensorflow as tf

    from tff_ser.layers import AttentionPooling
    layer = AttentionPooling(8, kernel_initializer=tf.keras.initializers.GlorotUniform(0),
                             score_initializer=tf.keras.initializers.GlorotUniform(1))
    x = np.random.default_rng(0).normal(size=(2, 6, 5)).astype(np.float32)
    out = layer(x).numpy()
    weights = layer.attention(tf.constant(x)).numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert (weights > 0).all()
    np.testing.assert_allclose(out, np.einsum("bt,btd->bd", weights, x), rtol=1e-5, atol=1e-6)
    shuffled = x[:, ::-1, :].copy()
    np.testing.assert_allclose(layer(shuffled).numpy(), out, rtol=1e-5, atol=1e-6)
    same = np.repeat(x[:, :1, :], 6, axis=1)  # every frame alike: the pooled vector is that frame
    np.testing.assert_allclose(layer(same).numpy(), x[:, 0, :], rtol=1e-5, atol=1e-6)


def test_the_second_stream_reads_any_sequence_and_pools_it_by_attention():
    assert count_params("attention_rnn") == 685_444
    lstm = build_model("attention_rnn", input_shape=(30, 12), cell="lstm", rnn_layers=1,
                       units=16, attention_units=8, hidden_units=8, seed=0)
    assert [layer.name for layer in lstm.layers][1:] == ["lstm_1", "attention",
                                                        "embedding_layer", "softmax"]
    with pytest.raises(ValueError, match="cell must be 'gru' or 'lstm'"):
        build_model("attention_rnn", cell="transformer")


def test_the_fusion_perceptron_has_paper_003s_layer_sizes():
    model = build_model("fusion_mlp", seed=0)
    assert [tuple(w.shape) for w in model.trainable_weights] == \
        [(8, 8), (8,), (8, 4), (4,), (4, 4), (4,)]
    assert model.count_params() == 128


def two_half_branches(n=400, seed=0):
    """Branch A knows whether the class is in {0, 1} or {2, 3}; branch B knows its parity."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    pair, parity = y // 2, y % 2

    def probs(known, split):
        p = np.full((n, 4), 0.0)
        for c in range(4):
            p[:, c] = np.where(split(c) == known, 0.45, 0.05)
        return p + rng.uniform(0, 0.02, size=(n, 4))

    a = TeacherOutputs(probs(pair, lambda c: c // 2), rng.normal(size=(n, 3)), "pair")
    b = TeacherOutputs(probs(parity, lambda c: c % 2), rng.normal(size=(n, 3)), "parity")
    task = Task("mlp", np.zeros((n, 136), np.float32), y,
                {"c0": np.arange(0, 150), "c1": np.arange(150, 300)}, {"held": np.arange(300, n)})
    return task, a, b


def test_two_branches_that_each_know_half_the_answer_fused_know_all_of_it():
    import keras
    task, a, b = two_half_branches()
    fused = fusion_task(task, [a, b], "fusion_mlp")
    assert fused.x.shape == (400, 8) and fused.train_clients.keys() == task.train_clients.keys()
    np.testing.assert_array_equal(fused.x[:, :4], a.probabilities.astype(np.float32))
    train, held = fused.train_indices, fused.val_indices
    scores = []
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        model = build_model("fusion_mlp", seed=seed)
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(fused.x[train], fused.y[train], epochs=150, batch_size=32, verbose=0)
        scores.append(model.evaluate(fused.x[held], fused.y[held], verbose=0)[1])
    alone = [np.mean(np.argmax(br.probabilities[held], 1) == task.y[held]) for br in (a, b)]
    assert max(alone) < 0.6
    # the perceptron's 4-unit ReLU layer can die at initialization (seed 0 does, on the
    # reference stack): most seeds fuse, so fused results need several seeds
    assert sorted(scores)[1] > 0.95, scores


def test_feature_level_fusion_standardizes_the_concatenated_embeddings_on_training_clips():
    task, a, b = two_half_branches()
    fused = fusion_task(task, [a, b], "mlp", level="feature")
    assert fused.x.shape == (400, 6)
    train = fused.x[task.train_indices]
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="at least two branches"):
        fusion_task(task, [a], "fusion_mlp")
    short = TeacherOutputs(a.probabilities[:10], None, "short")
    with pytest.raises(ValueError, match="scored 10 clips but the task has 400"):
        fusion_task(task, [a, short], "fusion_mlp")
    with pytest.raises(ValueError, match="embeddings; \\['noemb'\\] have none"):
        fusion_task(task, [a, TeacherOutputs(b.probabilities, None, "noemb")], "mlp",
                    level="feature")


def test_clips_one_feature_kind_lacks_are_dropped_from_every_set_and_listed():
    clips = [Clip(f"/c/10{i:02d}_DFA_ANG_XX.wav", f"10{i:02d}", "ANG", "DFA") for i in range(5)]
    spec = FeatureSet(np.arange(5, dtype=np.float32)[:, None], clips, [], "spectrogram", {})
    emb = FeatureSet(np.arange(4, dtype=np.float32)[::-1, None] * 10,
                     [clips[i] for i in (3, 2, 1, 0)], [(clips[4], "missing embedding: x")],
                     "embeddings", {})
    a, b = common_clips(spec, emb)
    assert [c.clip_id for c in a.clips] == [c.clip_id for c in b.clips] == \
        [c.clip_id for c in clips[:4]]
    np.testing.assert_array_equal(b.x[:, 0], [0.0, 10.0, 20.0, 30.0])
    assert a.skipped == [(clips[4], "not in every feature set: no embeddings features")]
    assert b.skipped == [(clips[4], "missing embedding: x")]
