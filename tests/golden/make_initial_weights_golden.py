"""Writes tests/golden/initial_weights.json on the reference stack (Keras 2.14).

The seeded initial weights of every preset model, as fingerprints (shape,
first values, sum, sum of squares per weight), so that
``tests/unit/test_stack.py`` can check that the current stack (Keras 3) builds the
same initial model from the same seed.  Run: ``.venv/bin/python
tests/golden/make_initial_weights_golden.py`` (reference stack only).
"""
import json
import pathlib
import sys

import numpy as np

CASES = [  # (model, seed)
    ("mlp", 0), ("mlp", 3), ("dense", 0), ("conv1d", 1), ("lstm", 0),
    ("cnn_logmel", 0), ("lstm_logmel", 2), ("mlp_egemaps", 0),
]


def fingerprint(model_name: str, seed: int) -> list:
    from tff_ser.models import build_model
    model = build_model(model_name, seed=seed)
    out = []
    for w in model.weights:
        a = np.asarray(w.numpy(), np.float64)
        out.append({"shape": list(a.shape), "head": a.ravel()[:16].tolist(),
                    "sum": float(a.sum()), "sumsq": float((a * a).sum())})
    return out


def main() -> None:
    from tff_ser.stack import keras_major
    if keras_major() != 2:
        sys.exit("run this on the reference stack (Keras 2.14): .venv/bin/python ...")
    golden = {f"{m}/seed{s}": fingerprint(m, s) for m, s in CASES}
    path = pathlib.Path(__file__).with_name("initial_weights.json")
    path.write_text(json.dumps(golden, indent=0) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
