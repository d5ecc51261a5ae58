"""The data flows one way: the import-layer contract in setup.cfg holds (import-linter)."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _lint_imports():
    exe = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    return exe if os.path.exists(exe) else shutil.which("lint-imports")


def test_no_module_imports_a_higher_layer_or_a_sibling():
    exe = _lint_imports()
    if exe is None:
        pytest.fail("lint-imports (import-linter) is missing from this environment: it is in "
                    "both lock files, so `make setup` installs it", pytrace=False)
    p = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in p.stdout


def test_the_contract_fails_on_an_upward_import(tmp_path):
    """The contract is not vacuous: an upward import added to a copy of the package breaks it."""
    exe = _lint_imports()
    if exe is None:
        pytest.skip("lint-imports missing (the test above fails with the reason)")
    copy = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "tff_ser"), copy / "tff_ser",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "setup.cfg"), copy / "setup.cfg")
    with open(copy / "tff_ser" / "corpus" / "records.py", "a") as f:
        f.write("\n\ndef _upward():\n    from tff_ser import cli  # noqa: F401\n")
    env = dict(os.environ, PYTHONPATH=str(copy))
    p = subprocess.run([exe], cwd=copy, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode != 0
    assert "tff_ser.corpus is not allowed to import tff_ser.cli" in p.stdout
