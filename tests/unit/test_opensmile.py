"""openSMILE's eGeMAPS and ComParE functionals as feature kinds, on generated clips."""
import numpy as np
import pytest

import tff_ser
from tff_ser.features.pipeline import FEATURE_KINDS, extract


@pytest.fixture(scope="module")
def clips(small_corpus_dir):
    from tff_ser.corpus import load_corpus
    load = load_corpus(small_corpus_dir)
    # two speakers' clips, all four emotions
    keep = sorted({c.speaker for c in load.clips})[:2]
    return [c for c in load.clips if c.speaker in keep]


@pytest.mark.parametrize("kind,width", [("egemaps", 88), ("compare", 6373)])
def test_opensmile_kinds_extract_the_standard_functionals_and_cache_them(clips, kind, width,
                                                                        tmp_path):
    fs = extract(clips, kind, cache_dir=tmp_path, progress=False, n_jobs=1)
    assert fs.x.shape == (len(clips), width) and not fs.skipped
    assert np.isfinite(fs.x).all()
    # the same numbers openSMILE itself gives for the clip, read at 16 kHz -- in a fresh
    # interpreter, since openSMILE crashes in a process that has imported TensorFlow 2.20
    direct = _opensmile_direct(clips[0].path, kind, tmp_path / "direct.npy")
    np.testing.assert_allclose(fs.x[0], direct.astype(np.float32), rtol=1e-6, atol=1e-6)
    again = extract(clips, kind, cache_dir=tmp_path, progress=False, n_jobs=1)
    np.testing.assert_array_equal(again.x, fs.x)
    assert FEATURE_KINDS[kind].shape({}) == (width,)


def test_the_mlp_trains_federated_on_egemaps(small_corpus_dir):
    from tff_ser.task import load_features, task_from_features
    _, fs = load_features("mlp_egemaps", size="small", progress=False)
    assert fs.x.shape[1] == 88
    task = task_from_features(fs, "mlp_egemaps", partition="by_speaker", seed=0)
    result = tff_ser.train_federated(task, tff_ser.FederatedConfig(rounds=2, batch_size=16),
                                     progress=False)
    assert result.config["engine"] == "batched"
    assert 0.0 <= result.final_metrics["validation"]["accuracy"] <= 1.0



def test_opensmile_features_are_computed_safely_after_tensorflow_is_imported(small_corpus_dir,
                                                                           tmp_path):
    """openSMILE's library crashes after TensorFlow 2.20 is imported: clips go to a worker.

    Run in a fresh interpreter that imports TensorFlow first, as a notebook does.
    """
    import subprocess
    import sys
    code = "\n".join([
        "import numpy as np, tensorflow as tf",
        "from tff_ser.corpus import load_corpus",
        "from tff_ser.features.pipeline import extract",
        f"clips = load_corpus({str(small_corpus_dir)!r}).clips[:6]",
        f"fs = extract(clips, 'egemaps', cache_dir={str(tmp_path)!r}, progress=False, n_jobs=1)",
        "assert fs.x.shape == (6, 88) and np.isfinite(fs.x).all()",
        "print('ok')"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def _opensmile_direct(path, kind, out):
    import subprocess
    import sys
    feature_set = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}[kind]
    code = "\n".join([
        "import numpy as np, opensmile",
        "from tff_ser.corpus.audio import load_audio",
        f"smile = opensmile.Smile(feature_set=opensmile.FeatureSet.{feature_set},",
        "                        feature_level=opensmile.FeatureLevel.Functionals)",
        f"x = smile.process_signal(load_audio({str(path)!r}, sr=16000), 16000).to_numpy()[0]",
        f"np.save({str(out)!r}, x)"])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(out)
