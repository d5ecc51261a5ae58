"""A run's checkpoint folder: what ``train_federated`` and ``train_centralized`` keep.

* ``run_config.json`` -- what the run is (engine, model, every FederatedConfig
  or CentralizedConfig field, clients, task); another configuration in the
  folder is refused, a larger ``rounds`` (``epochs``) extends the saved run;
* ``history.json`` -- the per-round (per-epoch) rows up to the saved round,
  written before the state (a kill between the two leaves it ahead, and
  :meth:`RunCheckpoint.resume` cuts it back);
* ``wall.json`` -- the wall time the run's processes spent up to their last save;
* the trainer's state (a federated engine's ``engine_state.npz`` or TFF's; a
  centralized run's ``centralized_state.npz``), written by the trainer;
* ``stopped.json`` -- written when a callback stopped the run, so a rerun
  returns the stopped run instead of training on.

Every file is written atomically (temp file, fsync, rename); a temp file a
killed writer left is swept before the run starts.  :func:`reporting_stops`
turns Ctrl-C, SIGTERM and a full disk inside a training loop into one
message saying what was saved and how to resume.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import List, Optional, Tuple

import numpy as np

from tff_ser.rundir import atomic_write_json, read_json


#: The run_config keys a rerun may raise, extending the saved run (rounds, centralized epochs).
_EXTENSIBLE = ("rounds", "epochs")


def checkpoint_bytes(weights, rounds: int) -> int:
    """Disk a checkpoint folder needs: two copies of weights and two optimizer slots, history."""
    params = sum(np.asarray(w).nbytes for group in weights for w in group)
    return 6 * params + 2000 * rounds


class RunCheckpoint:
    """The side files of one run's checkpoint folder (the trainer saves its own state).

    Parameters
    ----------
    directory : str
    run_config : dict
        What the run is (the trainer's ``result.config``).
    """

    def __init__(self, directory: str, run_config: dict):
        self.directory, self.run_config = directory, run_config

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _read(self, name: str):
        return read_json(self._path(name), what="checkpoint file",
                         remedy=f"delete the folder {self.directory} to start the run over")

    def prepare(self) -> None:
        """Check the folder is writable, sweep dead writers' temp files, check the config."""
        from tff_ser.rundir import check_writable, sweep_temp_files
        check_writable(self.directory, what="checkpoint folder")
        sweep_temp_files(self.directory)  # left by a writer that was killed mid-save
        self._check_run_config()

    def _check_run_config(self) -> None:
        from tff_ser.rundir import _json_default
        canonical = json.loads(json.dumps(self.run_config, default=_json_default))
        if os.path.exists(self._path("run_config.json")):
            saved = self._read("run_config.json")
            # ``rounds`` (``epochs``) may grow: the saved run is extended
            diff = sorted(k for k in set(saved) | set(canonical)
                          if k not in _EXTENSIBLE and saved.get(k) != canonical.get(k))
            if diff:
                raise ValueError(
                    f"{self.directory} holds a run with a different configuration (differs in "
                    f"{diff}); use another checkpoint_dir or delete it to start over")
            if all(saved.get(k) == canonical.get(k) for k in _EXTENSIBLE):
                return
        atomic_write_json(self._path("run_config.json"), canonical)

    def resume(self, engine, rounds: int) -> Tuple[int, List[dict], float]:
        """``(saved round, history up to it, earlier processes' wall time)``.

        ``engine.resume`` loads the state; a state past ``rounds`` is refused
        (it cannot go back).
        """
        done = engine.resume(self.directory)
        if done > rounds:
            raise ValueError(
                f"{self.directory} holds a run saved after {done} rounds (epochs), past the "
                f"{rounds} asked for: its state cannot go back; use another checkpoint_dir, "
                f"or ask for {done} or more")
        # History is saved before the state: a kill between the two leaves it
        # one round ahead, and it is cut back to the saved round here.
        history = self._load_history()[:done]
        return done, history, self._earlier_wall() if done else 0.0

    def _load_history(self) -> List[dict]:
        if not os.path.exists(self._path("history.json")):
            return []
        return self._read("history.json")

    def _earlier_wall(self) -> float:
        """Wall time the run's earlier processes spent up to their last save.

        Saved after the history and before the state, so it may count one
        round more than was kept: that round's time was spent all the same.
        """
        if not os.path.exists(self._path("wall.json")):
            return 0.0
        return float(self._read("wall.json")["wall_seconds"])

    def check_space(self, weights, rounds_left: int) -> None:
        from tff_ser.rundir import check_writable
        check_writable(self.directory, what="checkpoint folder",
                       need_bytes=checkpoint_bytes(weights, rounds_left))

    def save(self, engine, round_num: int, history: List[dict], wall_seconds: float) -> None:
        """History, then wall time, then the engine's state (the order resume relies on)."""
        atomic_write_json(self._path("history.json"), history)
        atomic_write_json(self._path("wall.json"),
                          {"round": round_num, "wall_seconds": wall_seconds})
        engine.save(round_num)

    def stopped(self) -> Optional[dict]:
        """What stopped the run early (``None``: it was not stopped)."""
        if not os.path.exists(self._path("stopped.json")):
            return None
        return self._read("stopped.json")

    def mark_stopped(self, stopped: dict) -> None:
        atomic_write_json(self._path("stopped.json"), stopped)


@dataclasses.dataclass
class LoopPosition:
    """Where a checkpointed training loop is, for the message it stops with.

    The loop sets ``current`` as each round (epoch) starts and ``saved`` as
    each is saved; ``unit`` is ``"round"`` or ``"epoch"``.
    """

    unit: str
    total: int
    checkpoint_dir: Optional[str]
    current: int = 1
    saved: int = 0

    def stopped_message(self, what: str) -> str:
        if self.checkpoint_dir and self.saved:
            where = (f"{self.unit}s 1..{self.saved} are saved in {self.checkpoint_dir}: run the "
                     "same command again to resume from there")
        elif self.checkpoint_dir:
            where = (f"no {self.unit} was saved yet in {self.checkpoint_dir}; the same command "
                     "starts over")
        else:
            where = ("nothing was saved (no checkpoint folder): pass checkpoint_dir "
                     "(--checkpoint-dir) to make a run resumable")
        return f"{what} in {self.unit} {self.current} of {self.total}; {where}"


@contextlib.contextmanager
def reporting_stops(position: LoopPosition, bar=None):
    """Re-raise an interrupt or a full disk inside the block with what was saved.

    Ctrl-C or SIGTERM (also when it lands inside a C call of TensorFlow or
    NumPy, as a ``SystemError``) becomes
    :class:`~tff_ser.errors.TrainingInterrupted`, a full disk
    :class:`~tff_ser.errors.DiskFull`; the progress ``bar`` is closed first
    so the message is not lost in it.  Other errors pass through unchanged.
    """
    from tff_ser.errors import DiskFull, TrainingInterrupted, interrupt_in_chain
    from tff_ser.rundir import _is_disk_full
    try:
        yield position
    except KeyboardInterrupt as exc:
        if bar is not None:
            bar.close()
        raise TrainingInterrupted(position.stopped_message("interrupted")) from exc
    except (SystemError, RuntimeError) as exc:  # Ctrl-C inside a C call of TF or NumPy
        if not interrupt_in_chain(exc):
            raise
        if bar is not None:
            bar.close()
        raise TrainingInterrupted(position.stopped_message("interrupted")) from exc
    except OSError as exc:
        if not (isinstance(exc, DiskFull) or _is_disk_full(exc)):
            raise
        if bar is not None:
            bar.close()
        raise DiskFull(f"{exc}. " + position.stopped_message("stopped: disk full")) from exc
