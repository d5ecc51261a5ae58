"""Install tff_ser onto a Colab runtime (or any environment that already has TensorFlow).

What the notebooks' first cell runs on Colab, from the repository's root
(README, "Colab"); standard library only, since nothing else is certain yet.

* **Current stack** (Colab's default runtime: Python 3.13, TensorFlow 2.20,
  Keras 3, NumPy 2): tff_ser goes onto the runtime's own TensorFlow, Keras,
  NumPy, SciPy, pandas and pyarrow -- pinned to the installed versions by a
  constraints file, so pip can add what is missing (optuna, openSMILE) but
  never reinstalls them: no runtime restart.  dp-accounting is installed
  without its dependencies because its ``attrs<24`` pin would downgrade the
  runtime's attrs (its other dependencies are on Colab already); it works
  with attrs 26 (``tests/integration/test_colab_install.py``).  Under a minute.
* **Reference stack** (``--reference``, Python 3.11 runtimes such as the
  pinned "2025.07" one): ``requirements/lock.txt`` and TFF 0.87 with
  ``--no-deps`` (TF 2.14 replaces the runtime's, so the session must be
  restarted once).

Usage: ``python tools/colab_install.py [--reference] [--dry-run]``.
"""
from __future__ import annotations

import argparse
import configparser
import importlib.metadata as md
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The runtime's packages that must stay as they are (pinned by a constraints file).
KEEP = ("tensorflow", "keras", "numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "librosa",
        "matplotlib", "attrs", "protobuf", "ml-dtypes", "h5py", "jax", "jaxlib", "torch")

#: Installed without dependencies (see the module docstring).
NO_DEPS = ("dp-accounting",)


#: tff_ser editable through a path entry, as `make setup` does: Colab's working directory
#: /content holds the clone /content/tff_ser, which the default editable finder would lose to
#: as an empty namespace package (tests/integration/test_install.py).
EDITABLE = ("--no-deps", "--no-build-isolation", "--config-settings", "editable_mode=compat",
            "-e")


def installed(name: str):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def requirements() -> list:
    """``install_requires`` of setup.cfg, one requirement a line."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    return [line.strip() for line in cfg["options"]["install_requires"].splitlines()
            if line.strip()]


def pip(*args: str, dry_run: bool = False) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "-q", *args]
    print("+", " ".join(cmd), flush=True)
    if not dry_run:
        subprocess.run(cmd, check=True)


def install_current(dry_run: bool = False) -> None:
    tf = installed("tensorflow")
    keras = installed("keras")
    if not tf or not keras or int(keras.split(".")[0]) < 3:
        sys.exit(f"this runtime has tensorflow {tf} and keras {keras}; the current stack needs "
                 "TensorFlow >= 2.16 with Keras 3 (Colab's default runtime has them). On a "
                 "Python 3.11 runtime use --reference for TFF 0.87.")
    before = {name: installed(name) for name in KEEP}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(f"{n}=={v}" for n, v in before.items() if v) + "\n")
        constraints = fh.name
    names = [r for r in requirements()
             if not any(r.lower().startswith(n) for n in NO_DEPS)]
    pip("-c", constraints, *names, dry_run=dry_run)
    for name in NO_DEPS:
        wanted = [r for r in requirements() if r.lower().startswith(name)]
        pip("--no-deps", *wanted, dry_run=dry_run)
    pip(*EDITABLE, ROOT, dry_run=dry_run)
    after = {name: installed(name) for name in KEEP}
    changed = {n: (before[n], after[n]) for n in KEEP if before[n] != after[n]}
    if changed:
        print(f"WARNING: the install changed runtime packages {changed}; restart the session "
              "(Runtime -> Restart session) before importing them", flush=True)


def install_reference(dry_run: bool = False) -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"the reference stack (TFF 0.87) needs Python 3.11; this runtime has "
                 f"{sys.version.split()[0]}. On Colab: Runtime -> Change runtime type -> "
                 "Runtime version -> 2025.07, or leave out --reference for the current stack.")
    pip("-r", os.path.join(ROOT, "requirements", "lock.txt"), dry_run=dry_run)
    pip("--no-deps", "tensorflow-federated==0.87.0", dry_run=dry_run)
    pip(*EDITABLE, ROOT, dry_run=dry_run)
    print("installed the reference stack: Runtime -> Restart session once, then run the "
          "notebook from the top", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", action="store_true",
                        help="TF 2.14 + TFF 0.87 (Python 3.11 only; restart needed)")
    parser.add_argument("--dry-run", action="store_true", help="print the pip commands only")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    (install_reference if args.reference else install_current)(args.dry_run)
    print(f"tff_ser installed in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
