"""Same numbers on both stacks: corpus, features and initial weights; TFF stays optional.

The golden files were written on the reference stack (TF 2.14, Keras 2,
NumPy 1.25: ``tests/golden/make_*_golden.py``); on the current stack (TF 2.20,
Keras 3, NumPy 2) these tests check that the generated corpus is
byte-identical, every feature kind agrees to 1e-5 relative and every preset
model starts from the same weights for the same seed.
"""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

GOLDEN = pathlib.Path(__file__).parents[1] / "golden"


def test_the_same_seed_builds_the_same_initial_model_on_both_stacks():
    sys.path.insert(0, str(GOLDEN))
    from make_initial_weights_golden import fingerprint
    golden = json.loads((GOLDEN / "initial_weights.json").read_text())
    assert len(golden) == 8
    for key, reference in golden.items():
        name, seed = key.split("/seed")
        got = fingerprint(name, int(seed))
        assert [w["shape"] for w in got] == [w["shape"] for w in reference], key
        for a, b in zip(got, reference):
            np.testing.assert_allclose(a["head"], b["head"], rtol=0, atol=1e-6, err_msg=key)
            # The sum of n weights moves by at most sqrt(n) * |error| (Cauchy-Schwarz): allow
            # an error of 1e-6 of the weights' norm. LAPACK's QR (orthogonal initializers)
            # differs in the last float32 bits between CPUs (CI failed at 3e-6 on a 128x512
            # kernel); seed 3 instead of 2 moves every kernel's sum by over 1,000 tolerances.
            size = int(np.prod(b["shape"]))
            norm_tolerance = 1e-6 * np.sqrt(size * b["sumsq"]) + 1e-6
            assert abs(a["sum"] - b["sum"]) <= norm_tolerance, (key, a["sum"], b["sum"])
            assert a["sumsq"] == pytest.approx(b["sumsq"], rel=1e-6), key


def test_the_generated_corpus_is_byte_identical_and_features_agree_across_stacks(
        small_corpus_dir, tmp_path):
    sys.path.insert(0, str(GOLDEN))
    from make_stack_golden import KINDS, corpus_digest, features
    golden = np.load(GOLDEN / "stack_small_seed0.npz")
    assert corpus_digest(pathlib.Path(small_corpus_dir)) == str(golden["corpus_sha256"])
    got = features(pathlib.Path(small_corpus_dir), tmp_path)
    for kind in KINDS:
        reference = golden[f"features/{kind}"]
        assert got[kind].shape == reference.shape, kind
        scale = np.maximum(np.abs(reference), 1e-3 * np.abs(reference).max())
        worst = float(np.max(np.abs(got[kind] - reference) / scale))
        assert worst < 1e-5, f"{kind}: relative difference {worst:.2e}"


def test_import_tff_ser_and_its_fast_path_never_import_tff():
    code = ("import sys, tff_ser\n"
            "import tff_ser.federated, tff_ser.engines.plain_tf, tff_ser.engines.batched\n"
            "import tff_ser.experiments, tff_ser.hpo, tff_ser.cli, tff_ser.crossval\n"
            "from tff_ser.models import build_model\n"
            "build_model('mlp', seed=0)\n"
            "print('tensorflow_federated' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_every_result_records_its_stack():
    from tff_ser.runtime import describe_machine, machine_info
    from tff_ser.stack import stack_info
    info = machine_info()
    stack = info["stack"]
    assert stack == stack_info()
    assert stack["tensorflow"] and stack["keras"] and stack["numpy"]
    assert stack["name"] in ("reference", "current")
    assert f"Keras {stack['keras']}" in describe_machine(info)


def test_the_keras_2_initializers_serialize():
    import keras
    from tff_ser.layers import Keras2GlorotUniform, Keras2Orthogonal
    for cls in (Keras2GlorotUniform, Keras2Orthogonal):
        init = cls(7)
        again = cls.from_config(init.get_config())
        np.testing.assert_array_equal(np.asarray(init((4, 6))), np.asarray(again((4, 6))))
    with pytest.raises(ValueError, match="rank >= 2"):
        Keras2Orthogonal(1)((5,))
    assert keras.__version__
