"""The record of one training run, as saved under ``results/``.

Every trainer (centralized baseline or federated) returns a
:class:`RunResult`; experiments and the HPO grid save it to a folder of its
own and tables are built from :meth:`RunResult.summary_row`.  On disk a run
is two files:

* ``result.json`` -- everything, the file :meth:`RunResult.load` reads;
* ``history.csv`` -- the per-round history flattened to a table, for
  spreadsheets and quick plots (nested dicts become ``validation.accuracy``
  style columns).

All contents are converted to JSON's types when the result is made (NumPy
scalars and arrays to Python numbers and lists, tuples to lists, mapping
keys to strings), so a saved and loaded result compares equal to the
original.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Dict, List

import numpy as np
import pandas as pd

RESULT_FILE = "result.json"
HISTORY_FILE = "history.csv"
_FORMAT = "tff_ser.RunResult"
#: 2 (2026-12-05): every FederatedConfig field in configs and run keys, no naming fields in
#: run keys.  ``tools/convert_results.py`` converts version 1.
_VERSION = 2


def to_jsonable(value: Any, where: str = "value") -> Any:
    """``value`` with NumPy types, tuples and paths turned into JSON's own types.

    Raises TypeError naming where in the structure an unconvertible object
    sits (``where`` is the path so far, for that message).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):  # also IntEnum; bool was handled above
        return int(value)
    if isinstance(value, float):  # also numpy.float64, a float subclass
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, np.ndarray):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str):
                key = str(k)
            elif k is None or isinstance(k, (bool, int, float, np.bool_, np.number)):
                # the string json.dump itself would write for this key
                key = json.dumps(to_jsonable(k, f"{where} key"))
            else:
                raise TypeError(f"{where} has a key of type {type(k).__name__}; use strings")
            out[key] = to_jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), where)
    raise TypeError(f"{where} is a {type(value).__name__}, which a result cannot store; "
                    "convert it to numbers, strings, lists or dicts first")


def _flatten(mapping: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested dicts to ``{"a.b": v}``; lists are kept as values."""
    flat: Dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@dataclasses.dataclass
class RunResult:
    """One run: its configuration, per-round history, final metrics and timings.

    Parameters
    ----------
    config : dict
        What was run (model, partition, rounds, learning rates, seed, ...).
    history : list of dict
        One dict per round (federated) or epoch (centralized), e.g.
        ``{"round": 1, "train_loss": .., "train_accuracy": .., "seconds": ..,
        "validation": {...}}``.
    final_metrics : dict
        Metrics of the final model, typically
        :func:`tff_ser.metrics.classification_metrics` output, possibly under
        ``"validation"`` / ``"federated_eval"`` / ``"test"`` sub-dicts.
    times : dict
        ``total_seconds``, ``per_round_seconds`` (list) and any other timings.
    extra : dict
        Anything else worth keeping (environment, per-client sizes, notes).
    """

    config: Dict[str, Any] = dataclasses.field(default_factory=dict)
    history: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    final_metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
    times: Dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("config", "final_metrics", "times", "extra"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise TypeError(f"RunResult.{name} must be a dict; got {type(value).__name__}")
            setattr(self, name, to_jsonable(value, name))
        if not isinstance(self.history, (list, tuple)) or \
                not all(isinstance(row, dict) for row in self.history):
            raise TypeError("RunResult.history must be a list of dicts, one per round or epoch")
        self.history = to_jsonable(list(self.history), "history")

    # ------------------------------------------------------------------ I/O

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document :meth:`save` writes."""
        return {"format": _FORMAT, "version": _VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, document: Dict[str, Any]) -> "RunResult":
        """Inverse of :meth:`to_dict`."""
        if document.get("format") != _FORMAT:
            raise ValueError(f"not a saved RunResult (format={document.get('format')!r})")
        if document.get("version") != _VERSION:
            hint = (": convert it with `python tools/convert_results.py FOLDER` (from a clone "
                    "of tff_ser)") if document.get("version") == 1 else ""
            raise ValueError(f"RunResult format version {document.get('version')!r} is not "
                             f"readable by this tff_ser (reads version {_VERSION}){hint}")
        fields = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: document.get(name, [] if name == "history" else {}) for name in fields})

    def save(self, directory) -> pathlib.Path:
        """Write ``result.json`` and ``history.csv`` into ``directory`` (created if needed).

        Returns the directory.  NaN and infinite metrics are kept (JSON's
        ``NaN``/``Infinity`` extensions, which Python reads back).
        """
        from tff_ser.rundir import atomic_write_text
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # Each file whole or not at all (temp + fsync + rename): a kill or a full disk
        # never leaves a truncated result.json or a history.csv cut mid-table.
        atomic_write_text(directory / RESULT_FILE, json.dumps(self.to_dict(), indent=2) + "\n")
        frame = self.history_frame()
        if frame.columns.empty:  # a header-less CSV is unreadable by pandas.read_csv
            frame = pd.DataFrame(columns=["round"])
        atomic_write_text(directory / HISTORY_FILE, frame.to_csv(index=False))
        return directory

    @classmethod
    def load(cls, directory) -> "RunResult":
        """Read a result written by :meth:`save` (from its ``result.json``)."""
        path = pathlib.Path(directory) / RESULT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {RESULT_FILE} in {directory}; is this a run folder "
                                    "written by RunResult.save?")
        from tff_ser.rundir import read_json
        return cls.from_dict(read_json(path, what="result file",
                                       remedy="rerun the run that wrote it"))

    # ------------------------------------------------------------ summaries

    def history_frame(self) -> pd.DataFrame:
        """The history as a DataFrame, one row per round/epoch.

        Nested dicts become ``outer.inner`` columns; lists (confusion
        matrices) stay as cell values.
        """
        rows = [_flatten(row) for row in self.history]
        columns: List[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        return pd.DataFrame(rows, columns=columns)

    def summary_row(self) -> Dict[str, Any]:
        """One flat dict for a results table: config, final metrics and times.

        Config keys come first, then the final metrics (nested keys joined
        with ``.``, e.g. ``validation.accuracy``), then scalar times and
        ``rounds_completed``.  Lists (confusion matrices, per-round times)
        are left out; a key that would repeat an earlier one gets its
        section as prefix (``final_metrics.seed``).
        """
        row: Dict[str, Any] = {}
        sections = (("config", self.config), ("final_metrics", self.final_metrics),
                    ("times", self.times))
        for section, values in sections:
            for key, value in _flatten(values).items():
                if isinstance(value, list):
                    continue
                row[key if key not in row else f"{section}.{key}"] = value
        per_round = self.times.get("per_round_seconds")
        if isinstance(per_round, list) and per_round and "mean_round_seconds" not in row:
            row["mean_round_seconds"] = float(np.mean(per_round))
        row["rounds_completed"] = len(self.history)
        return row


def results_table(results) -> pd.DataFrame:
    """Stack :meth:`RunResult.summary_row` of several results into one DataFrame."""
    return pd.DataFrame([r.summary_row() for r in results])
