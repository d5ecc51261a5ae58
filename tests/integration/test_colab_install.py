"""Colab's default runtime: the notebooks' first cell installs tff_ser onto its stack, no restart.

A fresh venv gets Colab's default runtime's versions of every package
tff_ser or its notebooks touch (``requirements/colab-default.txt``: TF
2.20.0, Keras 3.13.2, NumPy 2.1.3, attrs 26.1.0, ...; Python 3.11 here, as no
3.13 is on the development machines).  A Jupyter kernel of that venv, with
``google.colab`` faked at start-up, runs notebooks 01 and 05 headless in
their quick mode: the first cell installs tff_ser from this repository
(``tools/colab_install.py``) into the running kernel and the notebook goes on
without a restart.  Then the README's own-model example (a user-written Keras
3 model, federated and centralized) runs in the venv, and not one of Colab's
pinned versions has changed.

Opt-in (``pytest -m colab``, about 5 min: a TensorFlow download from the pip
cache); ``.ci/run`` runs it on the current stack.
"""
import json
import os
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

from helpers import notebook_outputs

pytestmark = pytest.mark.colab

ROOT = pathlib.Path(__file__).resolve().parents[2]
PINS = ROOT / "requirements" / "colab-default.txt"
FAKE_COLAB = """import sys, types
try:
    import google  # the namespace package of protobuf: keep google.protobuf importable
except ImportError:
    sys.modules["google"] = types.ModuleType("google")
sys.modules["google.colab"] = types.ModuleType("google.colab")
"""


def _pinned_names():
    return [re.split(r"[=<>]", line)[0].strip().lower().replace("_", "-")
            for line in PINS.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _freeze(python):
    out = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True,
                         check=True).stdout
    versions = {}
    for line in out.splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            versions[name.strip().lower().replace("_", "-")] = version.strip()
    return versions


@pytest.fixture(scope="module")
def colab_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("colab") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "pip==26.3"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(PINS)], check=True)
    return python


def test_colab_default_runtime_runs_the_notebooks_after_the_first_cell_installs_tff_ser(
        colab_venv, small_corpus_dir, tmp_path, monkeypatch):
    import papermill
    before = _freeze(colab_venv)
    assert "tff-ser" not in before and "optuna" not in before
    # a kernel of the Colab venv that believes it is on Colab
    kernels = tmp_path / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(colab_venv), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab default (test)", "language": "python"}))
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-fake-colab.py").write_text(FAKE_COLAB)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("TFF_SER_DIR", str(ROOT))   # the repository is there: no clone
    monkeypatch.setenv("MPLBACKEND", "agg")
    for name in ("01_data_and_features.ipynb", "05_per_speaker_federation.ipynb"):
        executed = tmp_path / name
        params = {"QUICK": True}
        if "OUT_DIR" in (ROOT / "notebooks" / name).read_text():
            params["OUT_DIR"] = str(tmp_path / "results")
        papermill.execute_notebook(str(ROOT / "notebooks" / name), str(executed),
                                   parameters=params, kernel_name="colab",
                                   cwd=str(ROOT / "notebooks"), progress_bar=False)
        text, images = notebook_outputs(nbformat.read(executed, as_version=4))
        assert "tff_ser installed in" in text, f"{name}: the Colab cell did not install"
        assert "generated stand-in corpus, not CREMA-D" in text
        assert images >= 2
        print(name, re.findall(r"tff_ser installed in \d+ s", text))
    after = _freeze(colab_venv)
    changed = {n: (before.get(n), after.get(n)) for n in _pinned_names()
               if before.get(n) != after.get(n)}
    assert not changed, f"the install changed Colab's packages: {changed}"
    version = subprocess.run([str(colab_venv), "-c", "import importlib.metadata as m; "
                              "print(m.version('tff_ser'))"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip(), version.stderr


def test_the_readmes_keras_3_model_example_trains_in_the_colab_venv(colab_venv, small_corpus_dir):
    # after the first test's install (the module's venv is shared)
    from test_readme import _block
    code = _block("own-model-example")
    out = subprocess.run([str(colab_venv), "-c", code], capture_output=True, text=True,
                         timeout=900, env={**os.environ, "MPLBACKEND": "agg"})
    assert out.returncode == 0, out.stderr[-3000:]
    engine, fed_acc, base_acc = out.stdout.split()[-3:]
    assert engine in ("batched", "tf")
    assert float(fed_acc) > 0.3 and float(base_acc) > 0.3
