"""Per-round hooks of :func:`tff_ser.federated.train_federated`.

A callback is any callable ``callback(round_num, metrics, weights)``:

* ``round_num`` -- the round just trained (1-based);
* ``metrics`` -- that round's history row (``train_loss``,
  ``train_accuracy``, ``bytes_up``, ..., and ``val_*`` on evaluation rounds,
  ``epsilon`` under DP); a copy, so changing it changes nothing;
* ``weights`` -- ``(trainable, non_trainable)`` NumPy arrays of the server
  model after the round.

It returns ``True`` to stop training after this round (anything else goes
on).  A stopped run is recorded as such in its checkpoint directory, so
rerunning the same call returns the stopped run instead of training on.
A callback with a ``restore(history)`` method is given the saved rounds
when a run resumes, so its state continues where it was.

:class:`EarlyStopping` stops when a validation metric stops improving.
"""
from __future__ import annotations

import math
from typing import List, Optional


class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` evaluations.

    Parameters
    ----------
    monitor : str
        A history key present on evaluation rounds: ``"val_accuracy"``,
        ``"val_f1_macro"``, ``"val_client_mean_accuracy"`` (set
        ``FederatedConfig.eval_every``), or any training metric.
    patience : int
        Evaluations without improvement before stopping.
    mode : {"max", "min"}
        Whether larger or smaller is better.
    min_delta : float
        Smallest change that counts as an improvement.

    Attributes
    ----------
    best, best_round : the best value seen and its round.
    stopped_round : the round training stopped at (``None``: not stopped).

    The model a stopped run returns is the last round's, not the best one;
    ``result.final_metrics["stopped_early"]`` names the best round.
    """

    def __init__(self, monitor: str = "val_accuracy", *, patience: int = 3, mode: str = "max",
                 min_delta: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if int(patience) < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.monitor, self.patience, self.mode = monitor, int(patience), mode
        self.min_delta = float(min_delta)
        self.best: Optional[float] = None
        self.best_round: Optional[int] = None
        self.wait = 0
        self.stopped_round: Optional[int] = None
        self.seen = 0

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def __call__(self, round_num: int, metrics: dict, weights=None) -> bool:
        if self.monitor not in metrics:
            return False  # not an evaluation round
        value = float(metrics[self.monitor])
        if math.isnan(value):
            return False
        self.seen += 1
        if self._better(value):
            self.best, self.best_round, self.wait = value, round_num, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_round = round_num
            return True
        return False

    def restore(self, history: List[dict]) -> None:
        """Replay saved rounds (a resumed run) so patience counts across the restart."""
        for row in history:
            self(int(row["round"]), row)

    def summary(self) -> dict:
        return {"monitor": self.monitor, "mode": self.mode, "patience": self.patience,
                "best": self.best, "best_round": self.best_round,
                "stopped_round": self.stopped_round}


def check_monitor(callbacks, config) -> None:
    """Refuse early stopping on a validation metric that the run never computes."""
    for cb in callbacks or ():
        if isinstance(cb, EarlyStopping) and cb.monitor.startswith("val_") and not config.eval_every:
            raise ValueError(f"EarlyStopping monitors {cb.monitor!r}, which only evaluation "
                             "rounds have; set FederatedConfig(eval_every=N)")


class CsvLogger:
    """Write the history to ``path`` after every round (``train_federated(csv_path=...)``).

    Rewritten whole each round, atomically, so a resumed run never holds
    duplicate rounds and a reader never sees half a table.
    """

    def __init__(self, path: str):
        self.path = path
        self.rows: List[dict] = []

    def restore(self, history: List[dict]) -> None:
        self.rows = [dict(row) for row in history]

    def __call__(self, round_num: int, metrics: dict, weights=None) -> None:
        import pandas as pd
        from tff_ser.rundir import atomic_write_csv
        self.rows.append(dict(metrics))
        atomic_write_csv(self.path, pd.DataFrame(self.rows))


class TensorBoardLogger:
    """Each round's scalars with ``tf.summary`` (``train_federated(tensorboard_dir=...)``).

    Beside the round's row: each held-out speaker's accuracy at the evaluation
    rounds (``val_speaker_accuracy/<speaker>``) and, for a personalized run,
    each training client's own and global UAR on its personal-test clips at
    the last round (``personal_uar/<client>``, ``global_uar/<client>``), so
    TensorBoard shows which speakers a model fails, not only the mean.
    """

    def __init__(self, logdir: str):
        import tensorflow as tf
        self.writer = tf.summary.create_file_writer(logdir)

    def __call__(self, round_num: int, metrics: dict, weights=None) -> None:
        import tensorflow as tf
        with self.writer.as_default():
            for key, value in metrics.items():
                if key != "round":
                    tf.summary.scalar(key, value, step=round_num)

    def per_speaker(self, round_num: int, name: str, values: dict) -> None:
        """One scalar per speaker: ``<name>/<speaker>``."""
        import tensorflow as tf
        with self.writer.as_default():
            for speaker, value in sorted(values.items()):
                tf.summary.scalar(f"{name}/{speaker}", float(value), step=round_num)

    def close(self) -> None:
        self.writer.flush()
