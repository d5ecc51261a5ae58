"""Writes tests/golden/stack_small_seed0.npz on the reference stack (TF 2.14, NumPy 1.25).

What ``tests/unit/test_stack.py`` checks the current stack (NumPy 2, librosa on
NumPy 2) against: the SHA-256 of every WAV of the small generated corpus at
corpus seed 0 (byte-identical on both stacks), and every feature kind of its
first four clips (equal to 1e-5 relative).  Run: ``.venv/bin/python
tests/golden/make_stack_golden.py`` (reference stack only).
"""
import hashlib
import pathlib
import sys
import tempfile

import numpy as np

KINDS = ("paper001", "clip_stats", "logmel", "spectrogram", "egemaps")
N_CLIPS = 4


def corpus_digest(root: pathlib.Path) -> str:
    h = hashlib.sha256()
    for wav in sorted(root.rglob("*.wav")):
        h.update(wav.relative_to(root).as_posix().encode())
        h.update(wav.read_bytes())
    return h.hexdigest()


def features(root: pathlib.Path, cache: pathlib.Path) -> dict:
    from tff_ser.corpus import load_corpus
    from tff_ser.features.pipeline import extract
    clips = sorted(load_corpus(str(root)).clips, key=lambda c: c.path)[:N_CLIPS]
    return {kind: extract(clips, kind, cache_dir=str(cache / kind), progress=False,
                          n_jobs=1).x for kind in KINDS}


def main() -> None:
    from tff_ser.stack import keras_major
    if keras_major() != 2:
        sys.exit("run this on the reference stack: .venv/bin/python ...")
    from tff_ser.corpus.generate import generate_corpus
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "generated-small"
        generate_corpus(str(root), size="small", seed=0, progress=False)
        arrays = {f"features/{k}": v for k, v in features(root, pathlib.Path(tmp)).items()}
        arrays["corpus_sha256"] = np.array(corpus_digest(root))
    path = pathlib.Path(__file__).with_name("stack_small_seed0.npz")
    np.savez_compressed(path, **arrays)
    print("wrote", path, {k: np.shape(v) for k, v in arrays.items()})


if __name__ == "__main__":
    main()
