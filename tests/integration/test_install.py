"""The installed package wins over a folder named ``tff_ser`` beside a user's script."""
import subprocess
import sys


def test_a_folder_named_tff_ser_next_to_a_script_does_not_shadow_the_package(tmp_path):
    """A script saved beside a clone (whose folder is named tff_ser) must import the package.

    With setuptools' default editable finder the clone folder won as an empty namespace
    package (``module 'tff_ser' has no attribute 'prepare_task'``); `make setup` installs
    through a path entry (``editable_mode=compat``), so the real package is found first.
    """
    clone = tmp_path / "tff_ser"
    clone.mkdir()
    (clone / "README.md").write_text("a clone's folder, as it sits beside a user's script")
    p = subprocess.run([sys.executable, "-c",
                        "import tff_ser; print(tff_ser.__file__); tff_ser.prepare_task"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (
        f"{p.stderr[-1500:]}\nThe environment's tff_ser was installed with setuptools' default "
        "editable finder; reinstall it with `make setup` (pip install -e . --config-settings "
        "editable_mode=compat)")
    assert p.stdout.strip().endswith("__init__.py")
