"""Centralized baseline: the same model and features on the pooled training clips.

Paper 001's "Baseline" column: the model trained without federation, for as
many epochs as the federated run has rounds, with Adam, then scored on the
same held-out clips.  Same seeded initial weights as the federated run.

With a ``checkpoint_dir`` the run saves its state after every epoch (the
model's weights, the optimizer's slots and step, the history) in the same
folder layout as a federated run (:mod:`tff_ser.checkpoint`); a run killed
and restarted with the same arguments continues from its last saved epoch
and ends with the same weights and metrics as one never stopped (the epochs'
clip orders are replayed from the seed, and the models' dropout masks are a
function of the batch, :class:`tff_ser.layers.ReproducibleDropout`).
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import List, Optional, Tuple

import numpy as np

from tff_ser.task import Task


@dataclasses.dataclass
class CentralizedConfig:
    """Knobs of a centralized run.

    Parameters
    ----------
    epochs : int
        Passes over the pooled training clips (matched to the federated
        rounds, NGE, in the papers' comparisons).
    batch_size : int
    lr : float
        Adam learning rate.
    optimizer : {"adam", "sgd"}
    seed : int
        Seeds initial weights and the shuffling.
    eval_every : int
        Evaluate on the validation clients every this many epochs (0: end only).
    """

    epochs: int = 20
    batch_size: int = 20
    lr: float = 0.001
    optimizer: str = "adam"
    seed: int = 0
    eval_every: int = 0

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")

    @classmethod
    def matching(cls, federated_config, **overrides) -> "CentralizedConfig":
        """The baseline paired with a federated run: epochs = rounds, same BS, LR, seed."""
        kw = dict(epochs=federated_config.rounds, batch_size=federated_config.batch_size,
                  lr=federated_config.client_lr, optimizer=federated_config.client_optimizer,
                  seed=federated_config.seed)
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Training steps Keras runs per call into its compiled train function.  The same
#: steps on the same batches in the same order (weights equal bit for bit to one
#: step per call, ``tests/integration/test_training_on_generated_corpus.py``), without Python's per-step
#: overhead: 1.9x faster for the MLP (5 epochs of the full corpus, 16.3 s -> 8.8 s).
STEPS_PER_EXECUTION = 64


def train_centralized(task: Task, config: CentralizedConfig, *, progress: bool = True,
                      threads: Optional[int] = None, checkpoint_dir: Optional[str] = None):
    """Train ``task.model`` on all training clients' clips pooled together.

    Parameters
    ----------
    task : Task
    config : CentralizedConfig
    progress : bool
        Progress bar over epochs.
    threads : int, optional
        Limits TensorFlow's thread pools (:func:`tff_ser.runtime.set_threads`).
    checkpoint_dir : str, optional
        Where the state is saved after every epoch.  A run restarted with the
        same arguments resumes from the last saved epoch and ends as an
        uninterrupted one would; another configuration in the folder is
        refused.  The folder is left in place (delete it when the result is kept).

    Returns
    -------
    RunResult
        The same final-metric keys as :func:`tff_ser.federated.train_federated`;
        ``times["train_seconds"]`` is the time spent training (evaluation
        excluded), summed over the processes a resumed run took.

    Raises
    ------
    tff_ser.errors.TrainingInterrupted
        Ctrl-C or SIGTERM; the message says which epochs are saved.
    tff_ser.errors.DiskFull
        The disk filled up mid-run; the message says which epoch is saved.
    """
    from tff_ser.runtime import machine_info, set_threads
    set_threads(threads)
    import keras
    from tqdm.auto import tqdm
    from tff_ser.evaluation import evaluate_keras
    from tff_ser.results import RunResult

    t_start = time.perf_counter()
    # The presets' dropout masks are a function of the batch, but a user's model
    # may draw from TF's global seed (Keras' Dropout): seeding it keeps such a
    # baseline repeatable (same seed -> same metrics), at the cost of resetting it.
    keras.utils.set_random_seed(config.seed)
    model_def = task.model_def
    model = model_def.build(task.input_shape, task.num_classes, seed=config.seed)
    opt = (keras.optimizers.Adam(config.lr) if config.optimizer == "adam"
           else keras.optimizers.SGD(config.lr))
    distilling = getattr(task, "teacher", None) is not None
    if distilling:
        from tff_ser.distillation import DistilledFit
        fit_epoch = DistilledFit(task, model, opt, seed=config.seed)
    else:
        model.compile(optimizer=opt, loss=model_def.make_loss(),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                               *model_def.make_metrics()],
                      steps_per_execution=STEPS_PER_EXECUTION)
    idx = task.train_indices
    x, y = task.x[idx], task.y[idx]
    run_config = {"mode": "centralized", "model": task.model_name, **config.to_dict(),
                  "num_train_clips": int(len(idx)), "task": task.info}
    state = _CentralizedState(model, opt, fit_epoch.student.extra_variables if distilling else [])
    checkpoint, done, history, earlier_wall = _open_checkpoint(checkpoint_dir, run_config, state,
                                                               config.epochs)
    rng = np.random.default_rng([config.seed, 11])
    for _ in range(done):  # the saved epochs' clip orders: the next epoch's comes next
        rng.permutation(len(idx))
    from tff_ser.checkpoint import LoopPosition, reporting_stops
    from tff_ser.errors import check_stop_requested
    bar = tqdm(range(done + 1, config.epochs + 1), desc=f"central {task.model_name}",
               unit="epoch", disable=not progress, initial=done, total=config.epochs)
    position = LoopPosition("epoch", config.epochs, checkpoint_dir, current=done + 1, saved=done)
    with reporting_stops(position, bar):
        for epoch in bar:
            position.current = epoch
            check_stop_requested()
            order = rng.permutation(len(idx))
            t0 = time.perf_counter()
            if distilling:  # the same batches in the same order, minimising paper 002's loss
                loss, accuracy = fit_epoch(idx[order], config.batch_size)
            else:
                h = model.fit(x[order], y[order], batch_size=config.batch_size, epochs=1,
                              shuffle=False, verbose=0)
                loss, accuracy = h.history["loss"][-1], h.history["accuracy"][-1]
            row = {"round": epoch, "seconds": time.perf_counter() - t0,
                   "train_loss": float(loss), "train_accuracy": float(accuracy)}
            if config.eval_every and epoch % config.eval_every == 0 and task.val_clients:
                ev = evaluate_keras(task, model)
                row["val_accuracy"] = ev["pooled"]["accuracy"]
                row["val_client_mean_accuracy"] = ev["client_mean_accuracy"]
                row["val_f1_macro"] = ev["pooled"]["f1_macro"]
            history.append(row)
            if checkpoint:
                checkpoint.save(state, epoch, history,
                                earlier_wall + time.perf_counter() - t_start)
                position.saved = epoch
    bar.close()

    final = {"train_loss": history[-1]["train_loss"],
             "train_accuracy": history[-1]["train_accuracy"]}
    if task.val_clients:
        ev = evaluate_keras(task, model)
        final["validation"] = ev["pooled"]
        final["validation_client_mean_accuracy"] = ev["client_mean_accuracy"]
        final["validation_per_client_accuracy"] = ev["per_client_accuracy"]
        final["validation_predictions"] = ev["predictions"]
    per_epoch = [h["seconds"] for h in history]
    this_process = time.perf_counter() - t_start
    times = {"train_seconds": float(np.sum(per_epoch)), "per_round_seconds": per_epoch,
             "mean_round_seconds": float(np.mean(per_epoch)),
             "wall_seconds": earlier_wall + this_process,
             "wall_seconds_this_process": this_process, "resumed_from_round": done}
    result = RunResult(config=run_config, history=history, final_metrics=final, times=times,
                       extra={"machine": machine_info()})
    result.weights = (  # in memory only, not saved
        [w.numpy() for w in model.trainable_weights],
                               [w.numpy() for w in model.non_trainable_weights])
    return result


def _open_checkpoint(checkpoint_dir: Optional[str], run_config: dict, state: "_CentralizedState",
                     epochs: int):
    """``(checkpoint or None, saved epoch, history up to it, earlier processes' wall time)``."""
    if not checkpoint_dir:
        return None, 0, [], 0.0
    from tff_ser.checkpoint import RunCheckpoint
    checkpoint = RunCheckpoint(checkpoint_dir, run_config)
    checkpoint.prepare()
    done, history, earlier_wall = checkpoint.resume(state, epochs)
    checkpoint.check_space(state.weights(), epochs - done)
    return checkpoint, done, history, earlier_wall


class _CentralizedState:
    """A centralized run's state as :class:`tff_ser.checkpoint.RunCheckpoint` saves it.

    The model's weights, the variables trained beside it (a distilled
    student's projection), and the optimizer's variables (its step and
    slots), in one ``centralized_state.npz`` written atomically.
    """

    FILE = "centralized_state.npz"

    def __init__(self, model, optimizer, extra_variables):
        self.model, self.optimizer, self.extra = model, optimizer, list(extra_variables)
        self.path: Optional[str] = None

    def weights(self) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        return ([w.numpy() for w in self.model.trainable_weights],
                [w.numpy() for w in self.model.non_trainable_weights])

    def _groups(self) -> dict:
        return {"model": list(self.model.trainable_weights)
                + list(self.model.non_trainable_weights),
                "extra": self.extra, "optimizer": list(self.optimizer.variables)}

    def save(self, epoch: int) -> None:
        import io
        from tff_ser.rundir import atomic_write_bytes
        arrays = {"epoch": np.int64(epoch)}
        for name, variables in self._groups().items():
            arrays.update({f"{name}/{i}": np.asarray(v.numpy()) for i, v in enumerate(variables)})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.path, buffer.getvalue())

    def resume(self, checkpoint_dir: str) -> int:
        """Load the saved state into the model and optimizer; the saved epoch (0: none)."""
        self.path = os.path.join(checkpoint_dir, self.FILE)
        if not os.path.exists(self.path):
            return 0
        # the slots exist once the optimizer has seen the variables it trains
        self.optimizer.build(list(self.model.trainable_variables) + self.extra)
        saved = _read_state(self.path)
        for name, variables in self._groups().items():
            values = saved.get(name, [])
            if len(values) != len(variables) or any(
                    tuple(v.shape) != value.shape for v, value in zip(variables, values)):
                raise ValueError(
                    f"{self.path} holds a state whose {name} variables "
                    f"({[value.shape for value in values]}) do not fit this run's "
                    f"({[tuple(v.shape) for v in variables]}); it was saved by another model "
                    f"or optimizer: delete {checkpoint_dir} to start the run over")
            for var, value in zip(variables, values):
                var.assign(value)
        return int(saved["epoch"])


def _read_state(path: str) -> dict:
    """``{"epoch": int, group: [arrays in order]}`` of a ``centralized_state.npz``."""
    import zipfile
    from tff_ser.errors import CorruptFile
    try:
        with np.load(path) as data:
            groups: dict = {"epoch": int(data["epoch"])}
            for key in sorted((k for k in data.files if "/" in k),
                              key=lambda k: (k.split("/")[0], int(k.split("/")[1]))):
                groups.setdefault(key.split("/")[0], []).append(data[key])
            return groups
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError) as exc:
        folder = os.path.dirname(os.path.abspath(path))
        raise CorruptFile(
            f"the checkpoint state {path} is unreadable ({type(exc).__name__}: {exc}). Delete "
            f"the folder {folder} to start the run over (the epochs saved there are lost), or "
            "restore the file from a backup and run the same command again to resume") from exc
