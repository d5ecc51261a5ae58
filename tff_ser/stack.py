"""Which software stack this process runs on, and what needs TensorFlow Federated.

tff_ser supports two stacks from one code base (docs/install.md):

* **reference** -- Python 3.11, TensorFlow 2.14, Keras 2, TFF 0.87
  (``requirements/lock.txt``): every engine; TFF's own process is the
  reference every fast engine is proven equal to.
* **current** -- Python 3.11-3.13, TensorFlow >= 2.20, Keras 3, NumPy 2, no
  TFF (``requirements/lock-current.txt``, Colab's default runtime): the
  ``tf`` and ``batched`` engines, which compute every named recipe and
  aggregator themselves.

Nothing here imports TensorFlow or TFF at import time; ``import tff_ser``
never imports TFF (``tests/unit/test_stack.py``).
"""
from __future__ import annotations

import importlib.util
import platform
from typing import Dict, Optional

#: What to install for TFF, in words every "needs TFF" error repeats.
REFERENCE_STACK_HINT = (
    "TFF 0.87 is installed only on the reference stack (Python 3.11, TensorFlow 2.14, "
    "Keras 2): `make setup` (STACK=reference, the default) on Python 3.11, or on Colab the "
    "pinned '2025.07' runtime (docs/install.md)")


class TffNotInstalled(ImportError):
    """Something that only TensorFlow Federated computes was asked for without TFF."""


def has_tff() -> bool:
    """True when ``tensorflow_federated`` can be imported (not imported here)."""
    return importlib.util.find_spec("tensorflow_federated") is not None


def require_tff(what: str) -> None:
    """Raise :class:`TffNotInstalled` naming ``what`` and the stack to install, unless TFF is there."""
    if not has_tff():
        raise TffNotInstalled(
            f"{what} needs TensorFlow Federated, which is not installed on this stack "
            f"(Python {platform.python_version()}). {REFERENCE_STACK_HINT}. Without TFF, "
            "use engine='auto', 'tf' or 'batched' and the named optimizers, recipes and "
            "aggregators, which the fast engines compute themselves.")


def keras_major() -> int:
    """2 on the reference stack (Keras 2.14), 3 on the current one."""
    import keras
    return int(keras.__version__.split(".")[0])


def stack_name() -> str:
    """``"reference"`` (Keras 2, TFF importable), ``"current"`` (Keras 3), else ``"other"``."""
    major = keras_major()
    if major >= 3:
        return "current"
    return "reference" if has_tff() else "other"


def _version(module: str) -> Optional[str]:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:  # noqa: BLE001 - not installed, or no metadata
        return None


def stack_info() -> Dict[str, Optional[str]]:
    """The versions a result depends on: Python, TensorFlow, Keras, NumPy and TFF (None: absent).

    Recorded in every run's ``result.extra["machine"]["stack"]`` beside the
    CPU (:func:`tff_ser.runtime.machine_info`).
    """
    info = {"python": platform.python_version(), "tensorflow": _version("tensorflow"),
            "keras": _version("keras"), "numpy": _version("numpy"),
            "tensorflow_federated": _version("tensorflow-federated")}
    try:
        info["name"] = stack_name()
    except ImportError:
        info["name"] = None
    return info
