"""Centralized baseline: the same model and features on the pooled training clips.

Paper 001's "Baseline" column: the model trained without federation, for as
many epochs as the federated run has rounds, with Adam, then scored on the
same held-out clips.  Same seeded initial weights as the federated run.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional

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
                      threads: Optional[int] = None):
    """Train ``task.model`` on all training clients' clips pooled together.

    ``threads`` limits TensorFlow's thread pools (:func:`tff_ser.runtime.set_threads`).

    Returns a :class:`tff_ser.results.RunResult` with the same final-metric
    keys as :func:`tff_ser.federated.train_federated`; ``times["train_seconds"]``
    is the time spent in ``fit`` (evaluation excluded).
    """
    from tff_ser.runtime import machine_info, set_threads
    set_threads(threads)
    import keras
    from tqdm.auto import tqdm
    from tff_ser.evaluation import evaluate_keras
    from tff_ser.results import RunResult

    t_start = time.perf_counter()
    # Dropout masks draw from TF's global seed; seeding it makes the baseline
    # repeatable (same seed -> same metrics), at the cost of resetting it.
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
    rng = np.random.default_rng([config.seed, 11])
    history, per_epoch = [], []
    for epoch in tqdm(range(1, config.epochs + 1), desc=f"central {task.model_name}",
                      unit="epoch", disable=not progress):
        order = rng.permutation(len(idx))
        t0 = time.perf_counter()
        if distilling:  # the same batches in the same order, minimising paper 002's loss
            loss, accuracy = fit_epoch(idx[order], config.batch_size)
        else:
            h = model.fit(x[order], y[order], batch_size=config.batch_size, epochs=1,
                          shuffle=False, verbose=0)
            loss, accuracy = h.history["loss"][-1], h.history["accuracy"][-1]
        seconds = time.perf_counter() - t0
        per_epoch.append(seconds)
        row = {"round": epoch, "seconds": seconds,
               "train_loss": float(loss), "train_accuracy": float(accuracy)}
        if config.eval_every and epoch % config.eval_every == 0 and task.val_clients:
            ev = evaluate_keras(task, model)
            row["val_accuracy"] = ev["pooled"]["accuracy"]
            row["val_client_mean_accuracy"] = ev["client_mean_accuracy"]
            row["val_f1_macro"] = ev["pooled"]["f1_macro"]
        history.append(row)

    final = {"train_loss": history[-1]["train_loss"],
             "train_accuracy": history[-1]["train_accuracy"]}
    if task.val_clients:
        ev = evaluate_keras(task, model)
        final["validation"] = ev["pooled"]
        final["validation_client_mean_accuracy"] = ev["client_mean_accuracy"]
        final["validation_per_client_accuracy"] = ev["per_client_accuracy"]
        final["validation_predictions"] = ev["predictions"]
    times = {"train_seconds": float(np.sum(per_epoch)), "per_round_seconds": per_epoch,
             "mean_round_seconds": float(np.mean(per_epoch)),
             "wall_seconds": time.perf_counter() - t_start}
    run_config = {"mode": "centralized", "model": task.model_name, **config.to_dict(),
                  "num_train_clips": int(len(idx)), "task": task.info}
    result = RunResult(config=run_config, history=history, final_metrics=final, times=times,
                       extra={"machine": machine_info()})
    result.weights = (  # in memory only, not saved
        [w.numpy() for w in model.trainable_weights],
                               [w.numpy() for w in model.non_trainable_weights])
    return result
