"""The ``embeddings`` feature kind: a user's own per-clip .npy files, with clear errors for bad ones.

Paper 003's wav2vec stream cannot be computed here (no pretrained weights); users bring their
own vectors or sequences, one <clip id>.npy per clip.  These tests write such folders.
"""
import os

import numpy as np
import pytest

from tff_ser.corpus.records import Clip
from tff_ser.features import EmbeddingError, extract, load_embeddings


def clips(n=4):
    return [Clip(path=f"/corpus/AudioWAV/10{i:02d}_DFA_{emo}_XX.wav", speaker=f"10{i:02d}",
                 emotion=emo, sentence="DFA", corpus="crema-d")
            for i, emo in zip(range(n), ["ANG", "HAP", "NEU", "SAD"] * n)]


def write(folder, arrays, names=None):
    os.makedirs(folder, exist_ok=True)
    for clip, array in zip(names or clips(len(arrays)), arrays):
        np.save(os.path.join(folder, f"{clip.clip_id}.npy"), array)
    return str(folder)


def test_vectors_stack_in_clip_order_and_match_files_by_clip_id(tmp_path):
    rng = np.random.default_rng(0)
    vectors = [rng.normal(size=16).astype(np.float32) for _ in range(4)]
    folder = write(tmp_path / "emb", vectors)
    fs = extract(clips(), "embeddings", folder=folder)
    assert fs.kind == "embeddings" and fs.x.shape == (4, 16) and not fs.skipped
    for row, vector in zip(fs.x, vectors):
        np.testing.assert_array_equal(row, vector)
    np.testing.assert_array_equal(fs.labels(("NEU", "HAP", "SAD", "ANG")), [3, 1, 0, 2])


def test_sequences_of_any_length_are_padded_to_the_longest_and_pooled_as_paper_003(tmp_path):
    seqs = [np.full((t, 3), float(t), np.float32) for t in (4, 6, 8, 2)]
    folder = write(tmp_path / "emb", seqs)
    fs = load_embeddings(clips(), folder, frames=4)
    assert fs.x.shape == (4, 4, 3)
    # the 2-frame clip: padded with 6 zero frames to 8, pooled in runs of 2
    np.testing.assert_array_equal(fs.x[3, :, 0], [2.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(fs.x[2, :, 0], [8.0] * 4)
    np.testing.assert_array_equal(fs.x[0, :, 0], [4.0, 4.0, 0.0, 0.0])
    with pytest.raises(EmbeddingError, match="4 different lengths .* pass frames=N"):
        load_embeddings(clips(), folder)
    with pytest.raises(EmbeddingError, match="frames=9 is more than the longest sequence"):
        load_embeddings(clips(), folder, frames=9)


def test_missing_files_are_an_error_naming_them_or_a_listed_skip(tmp_path):
    folder = write(tmp_path / "emb", [np.ones(5)] * 3)
    with pytest.raises(EmbeddingError, match=r"1 of 4 clips have no embedding .*1003_DFA_SAD_XX"
                                              r"\.npy.*missing='skip'"):
        load_embeddings(clips(), folder)
    fs = load_embeddings(clips(), folder, missing="skip")
    assert len(fs) == 3 and [c.clip_id for c, _ in fs.skipped] == ["1003_DFA_SAD_XX"]
    assert fs.skipped[0][1].startswith("missing embedding: ")
    with pytest.raises(EmbeddingError, match="does not exist"):
        load_embeddings(clips(), tmp_path / "nowhere")


@pytest.mark.parametrize("bad, message", [
    (np.ones(7), r"widths differ: .*1002_DFA_NEU_XX\.npy has width 7, most files 5"),
    (np.ones((3, 5)), "mixes vectors and sequences"),
    (np.ones((2, 2, 5)), r"has shape \(2, 2, 5\)"),
    (np.array([1.0, np.nan, 1.0, 1.0, 1.0]), "1 non-finite values"),
    (np.array(["a", "b"]), "<U1 values; embeddings are numbers"),
    (np.array([{"x": 1}], dtype=object), "holds Python objects"),
])
def test_a_misshaped_or_bad_file_is_named_with_what_is_wrong(tmp_path, bad, message):
    arrays = [np.ones(5), np.ones(5), bad, np.ones(5)]
    folder = write(tmp_path / "emb", arrays)
    with pytest.raises(EmbeddingError, match=message):
        load_embeddings(clips(), folder)


def test_a_file_numpy_cannot_read_is_named(tmp_path):
    folder = write(tmp_path / "emb", [np.ones(5)] * 4)
    with open(os.path.join(folder, "1001_DFA_HAP_XX.npy"), "wb") as fh:
        fh.write(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(EmbeddingError, match=r"1001_DFA_HAP_XX\.npy is no NumPy \.npy file"):
        load_embeddings(clips(), folder)


def test_extract_says_which_arguments_embeddings_take(tmp_path):
    with pytest.raises(ValueError, match="takes folder= \\(required\\)"):
        extract(clips(), "embeddings", n_fft=512)
