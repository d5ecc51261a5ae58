"""The training seed never touches the corpus (issue: a seed other than the corpus's regenerated it).

``prepare_task(seed=1)`` used to pass its seed on to corpus generation, which
rewrote ``data/generated`` in place (new WAVs, new GENERATED.json), so every
committed run stopped matching its corpus.  Now the corpus has its own
``corpus_seed`` and a corpus on disk is never rewritten by building a task.
"""
import hashlib
import os

import pytest

from tff_ser.task import prepare_task
from tff_ser.federated import FederatedConfig, train_federated


def _snapshot(root) -> dict:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = (hashlib.sha1(f.read()).hexdigest(),
                                                     st.st_mtime_ns)
    return out


def test_training_with_seed_1_leaves_the_generated_corpus_byte_for_byte_untouched(
        small_corpus_dir):
    before = _snapshot(small_corpus_dir)
    assert any(k.endswith(".wav") for k in before) and "GENERATED.json" in before
    task = prepare_task("mlp", size="small", seed=1, progress=False)
    result = train_federated(task, FederatedConfig(rounds=1, batch_size=16, seed=1),
                             progress=False)
    assert result.config["seed"] == 1
    assert _snapshot(small_corpus_dir) == before


def test_a_corpus_generated_with_another_seed_is_an_error_that_says_how_to_regenerate(
        small_corpus_dir):
    before = _snapshot(small_corpus_dir)
    with pytest.raises(ValueError, match=r"corpus_seed=7.*tff-ser data generate --size small "
                                         r"--seed 7 --overwrite"):
        prepare_task("mlp", size="small", corpus_seed=7, progress=False)
    assert _snapshot(small_corpus_dir) == before
