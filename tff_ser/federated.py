"""Federated training: the FedAvg loop with separate client and server optimizers.

Paper 001 (Chau & Garces) trains with TFF's Federated Averaging and "Adam
optimizers with different learning rates for the client and server"; paper
000 (Mishchenko et al.) tunes rounds (NGE), local epochs (NLE), learning rate
(LR), batch size (BS) and the fraction of clients per round (CD).
:func:`train_federated` is the loop over rounds; who computes a round is an
engine (:mod:`tff_ser.engines`): TFF 0.87's ``build_weighted_fed_avg``
process (``"tff"``, the reference) or one of the faster engines that compute
the same rounds, each proven equal to TFF by a test.  The loop owns

* the resume logic (state saved every round, a restarted run continues from
  its last saved round and ends with the same final metrics);
* evaluation on the held-out clients, centralized on the pooled held-out
  clips (metrics from :func:`tff_ser.metrics.classification_metrics`) and,
  on the TFF engine, TFF's federated evaluation too;
* per-round history, CSV and TensorBoard output, and the run's times.

The knobs themselves (:class:`~tff_ser.fedconfig.FederatedConfig`), client
sampling and clip order live in :mod:`tff_ser.fedconfig`, which imports no
engine.
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from tff_ser.engines.base import ENGINE_NAMES, choose_engine, make_engine
from tff_ser.fedconfig import (OPTIMIZERS, FederatedConfig, client_order,  # noqa: F401 (re-exported)
                               initial_model_weights, sample_clients)
from tff_ser.task import Task

#: Engines ``train_federated`` accepts (see :func:`tff_ser.engines.base.choose_engine`).
ENGINES = ENGINE_NAMES

# Names that lived here before the engines had modules of their own.
_MOVED = {name: "tff_ser.engines.tff_process" for name in (
    "build_processes", "make_model_fn", "initial_state", "set_learning_rates",
    "learning_rates", "with_model_weights", "_client_dataset", "_element_spec")}


def __getattr__(name):
    if name in _MOVED:
        import importlib
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'tff_ser.federated' has no attribute {name!r}")


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------

_EVAL_MODELS: Dict[tuple, object] = {}


def _eval_model(model, input_shape: tuple, num_classes: int):
    # One Keras model per model value, reused: rebuilding a model (and its
    # predict function) for every evaluation retraces TF graphs each time.
    # Keyed by the KerasModel object, never by its name, so another model
    # under the same name cannot reuse it.
    from tff_ser.models import as_model
    model_def = as_model(model)
    key = (model_def, tuple(input_shape), num_classes)
    if key not in _EVAL_MODELS:
        _EVAL_MODELS[key] = model_def.build(tuple(input_shape), num_classes)
    return _EVAL_MODELS[key]


def evaluate_weights(task: Task, weights, *, batch_size: int = 256) -> dict:
    """Centralized evaluation of model weights on the validation clients.

    Returns pooled metrics over all validation clips (``pooled``), the
    mean of per-client accuracies (paper 000's objective, ``client_mean_accuracy``)
    and the per-client accuracies.
    """
    try:
        return _evaluate_cached(task, weights, batch_size)
    except ValueError as exc:
        # Keras invalidates models made before a later tf.compat.v1 graph built
        # another model (TFF traces each new process's model_fn in such a
        # graph): "Your Layer or Model is in an invalid state".  Measured: two
        # resumed TFF runs of different configs in one process.  Rebuild once.
        if "invalid state" not in str(exc):
            raise
        _EVAL_MODELS.pop((task.model_def, tuple(task.input_shape), task.num_classes), None)
        return _evaluate_cached(task, weights, batch_size)


def _evaluate_cached(task: Task, weights, batch_size: int) -> dict:
    model = _eval_model(task.model_def, task.input_shape, task.num_classes)
    trainable, non_trainable = weights
    for var, value in zip(model.trainable_weights, trainable):
        var.assign(value)
    for var, value in zip(model.non_trainable_weights, non_trainable):
        var.assign(value)
    return evaluate_keras(task, model, batch_size=batch_size)


def predict_classes(model, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Argmax class of ``model`` on ``x``, in inference mode, batch by batch."""
    out = [np.argmax(np.asarray(model(x[i:i + batch_size], training=False)), axis=-1)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def evaluate_keras(task: Task, model, *, batch_size: int = 256) -> dict:
    """Evaluate a Keras model on the task's validation clients (see :func:`evaluate_weights`)."""
    from tff_ser.metrics import classification_metrics
    idx = task.val_indices
    if len(idx) == 0:
        return {}
    pred = predict_classes(model, task.x[idx], batch_size=batch_size)
    pooled = classification_metrics(task.y[idx], pred, num_classes=task.num_classes,
                                    class_names=list(task.class_names))
    pos = {int(i): k for k, i in enumerate(idx)}
    per_client = {}
    for cid, cidx in sorted(task.val_clients.items()):
        rows = [pos[int(i)] for i in cidx]
        per_client[cid] = float(np.mean(pred[rows] == task.y[cidx]))
    return {"pooled": pooled,
            "client_mean_accuracy": float(np.mean(list(per_client.values()))),
            "per_client_accuracy": per_client,
            # per clip, to pool over folds or seeds: row of task.x, true and predicted class
            "predictions": {"index": [int(i) for i in idx], "true": task.y[idx].tolist(),
                            "predicted": np.asarray(pred).astype(int).tolist()}}


# --------------------------------------------------------------------------
# the training loop
# --------------------------------------------------------------------------

def train_federated(task: Task, config: FederatedConfig, *,
                    checkpoint_dir: Optional[str] = None,
                    csv_path: Optional[str] = None,
                    tensorboard_dir: Optional[str] = None,
                    progress: bool = True,
                    federated_eval: bool = True,
                    engine: str = "auto", threads: Optional[int] = None,
                    callbacks: Optional[Sequence[Callable]] = None, workers=None):
    """Train ``task.model`` with FedAvg on ``task.train_clients``.

    Parameters
    ----------
    task : Task
    config : FederatedConfig
    checkpoint_dir : str, optional
        Where the state is saved after every round.  A run restarted with the
        same arguments resumes from the last saved round and ends with the
        same final metrics as an uninterrupted run.  The directory also
        records the config (engine included); a different config in the same
        directory is refused.
    csv_path : str, optional
        Per-round metrics, rewritten after every round.
    tensorboard_dir : str, optional
        Per-round scalars written with ``tf.summary``.
    progress : bool
        Show a progress bar over rounds.
    federated_eval : bool
        Also run TFF's ``build_fed_eval`` on the validation clients at the end
        (TFF engine only).
    engine : {"auto", "tff", "batched", "tf"}
        Who computes the rounds (:func:`tff_ser.engines.base.choose_engine`).
        ``"auto"`` (default): the fastest engine that implements the model
        and configuration -- ``"batched"`` (all clients in one graph;
        Dense/Dropout models such as paper 000's MLP), else ``"tf"`` (clients
        one after another in one traced TensorFlow function; every model of
        the package, CPU or GPU), else ``"tff"``.  ``"tff"``: TFF's FedAvg
        process, the reference every other engine is tested against.  The
        engine used is recorded in ``result.config["engine"]``.
    threads : int, optional
        TensorFlow's intra-/inter-op threads (:func:`tff_ser.runtime.set_threads`;
        must come before TensorFlow's first operation in the process).
    callbacks : list of callable, optional
        Per-round hooks ``callback(round_num, metrics, weights)``; one that
        returns ``True`` stops training after that round
        (:mod:`tff_ser.callbacks`, e.g. :class:`~tff_ser.callbacks.EarlyStopping`).
    workers : int, str or list of str, optional
        Where TFF's process runs (``engine="tff"``; ``"auto"`` then means
        ``"tff"``): ``None``/``1`` one local C++ worker (the reference); ``n``
        local workers; ``"auto"`` one per core; ``["host:port", ...]`` workers
        started on other hosts with ``tff-ser worker --port PORT``.  Each
        round's clients are split across the workers by TFF's
        mergeable-computation context (:func:`tff_ser.runtime.set_workers`);
        the weights equal one worker's to float32 rounding, and a run may
        resume on another number of workers.  Recorded in
        ``result.times["tff_workers"]``.

    Every history row also holds the round's communication (``bytes_down``,
    ``bytes_up``: :mod:`tff_ser.communication`) and, under DP-FedAvg, the
    run's ``epsilon`` so far (:mod:`tff_ser.privacy`); their totals are in
    ``final_metrics["communication"]`` and ``final_metrics["privacy"]``.

    Returns
    -------
    tff_ser.results.RunResult
        ``times["train_seconds"]`` is the sum of the per-round times, the
        computation time (CT) of paper 000: on every engine one round's time
        covers building the round's client batches, local training,
        aggregation and the server step; it excludes building/compiling the
        processes, evaluation and checkpointing. ``times["wall_seconds"]`` is
        the wall time of every process that worked on the run: a resumed run
        adds the wall time its earlier processes had spent up to their last
        saved round (work lost to the interruption after that is not counted);
        ``times["wall_seconds_this_process"]`` is this call's alone.

    Raises
    ------
    tff_ser.engines.base.EngineUnsupported
        An explicit engine that does not implement the model or configuration.
    tff_ser.runtime.WorkerDied
        The TFF engine's C++ worker died mid-round (e.g. killed for memory).
    """
    from tff_ser import runtime
    runtime.set_threads(threads)
    from tff_ser.callbacks import check_monitor
    from tff_ser.fedconfig import check_config_for_task

    check_config_for_task(config, len(task.train_clients))
    callbacks = list(callbacks or [])
    check_monitor(callbacks, config)
    spec = runtime.parse_workers(workers) if workers is not None else None
    if spec is not None and spec != runtime.parse_workers(1):
        if engine == "auto":
            engine = "tff"
        elif engine != "tff":
            raise ValueError(
                f"workers={workers!r} spreads TFF's process over several C++ workers, but "
                f"engine={engine!r} does not run on TFF workers; pass engine='tff' (or drop "
                "workers: the fast engines run in this process)")
    t_start = time.perf_counter()
    engine = choose_engine(task, config, engine)
    previous_workers = runtime.set_workers(spec) if spec and engine == "tff" else None
    try:
        return _train_federated(task, config, engine, t_start, checkpoint_dir=checkpoint_dir,
                                csv_path=csv_path, tensorboard_dir=tensorboard_dir,
                                progress=progress, federated_eval=federated_eval,
                                callbacks=callbacks)
    finally:
        if previous_workers is not None:
            runtime.set_workers(previous_workers)


def _train_federated(task, config, engine, t_start, *, checkpoint_dir, csv_path,
                     tensorboard_dir, progress, federated_eval, callbacks):
    import tensorflow as tf
    from tqdm.auto import tqdm
    from tff_ser import runtime
    from tff_ser.communication import round_bytes
    from tff_ser.fedconfig import sampled_per_round
    from tff_ser.results import RunResult
    rounds = make_engine(engine, task, config)
    build_seconds = time.perf_counter() - t_start

    run_config = {"mode": "federated", "engine": engine, "model": task.model_name,
                  **config.to_dict(), "num_train_clients": len(task.train_clients),
                  "num_val_clients": len(task.val_clients), "task": task.info}
    history: List[dict] = []
    done = 0
    earlier_wall = 0.0
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
        _check_run_config(checkpoint_dir, run_config)
        done = rounds.resume(checkpoint_dir)
        # History is saved before the state: a kill between the two leaves it
        # one round ahead, and it is cut back to the saved round here.
        history = _load_history(checkpoint_dir)[:done]
        earlier_wall = _load_earlier_wall(checkpoint_dir) if done else 0.0
    if done == 0:
        rounds.start()
    stopped = _load_stopped(checkpoint_dir) if checkpoint_dir and done else None
    for cb in callbacks:
        if history and hasattr(cb, "restore"):
            cb.restore([dict(h) for h in history])
    if stopped is None and any(getattr(cb, "stopped_round", None) for cb in callbacks):
        # killed between the stopping round's save and its stopped.json
        stopped = {"round": done, "by": [_callback_summary(cb) for cb in callbacks]}
    sampled = sampled_per_round(len(task.train_clients), config.client_fraction)
    per_round_bytes = round_bytes(rounds.weights(), sampled, compressed=config.compresses)
    epsilons = _epsilons(config, len(task.train_clients), sampled)

    writer = tf.summary.create_file_writer(tensorboard_dir) if tensorboard_dir else None
    last = done if stopped else config.rounds
    bar = tqdm(range(done + 1, last + 1), desc=f"FL {task.model_name}", unit="round",
               disable=not progress, initial=done, total=config.rounds)
    for round_num in bar:
        row = rounds.round(round_num)
        row.update(per_round_bytes)
        if epsilons is not None:
            row["epsilon"] = epsilons[round_num - 1]
        if config.eval_every and (round_num % config.eval_every == 0) and task.val_clients:
            ev = evaluate_weights(task, rounds.weights())
            row["val_accuracy"] = ev["pooled"]["accuracy"]
            row["val_client_mean_accuracy"] = ev["client_mean_accuracy"]
            row["val_f1_macro"] = ev["pooled"]["f1_macro"]
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_accuracy']:.3f}")
        if writer is not None:
            with writer.as_default():
                for k, v in row.items():
                    if k != "round":
                        tf.summary.scalar(k, v, step=round_num)
        if csv_path:
            _write_csv(csv_path, history)
        stop = False
        if callbacks:
            w = rounds.weights()
            for cb in callbacks:
                stop = (cb(round_num, dict(row), w) is True) or stop
        if checkpoint_dir:
            _save_history(checkpoint_dir, history)
            _save_wall(checkpoint_dir, round_num, earlier_wall + time.perf_counter() - t_start)
            rounds.save(round_num)
        if stop:
            stopped = {"round": round_num, "by": [_callback_summary(cb) for cb in callbacks]}
            if checkpoint_dir:
                _atomic_write_json(os.path.join(checkpoint_dir, "stopped.json"), stopped)
            break
    bar.close()
    if writer is not None:
        writer.flush()

    weights = rounds.weights()
    final = {}
    if task.val_clients:
        ev = evaluate_weights(task, weights)
        final["validation"] = ev["pooled"]
        final["validation_client_mean_accuracy"] = ev["client_mean_accuracy"]
        final["validation_per_client_accuracy"] = ev["per_client_accuracy"]
        final["validation_predictions"] = ev["predictions"]
        if federated_eval and engine == "tff":
            final["federated_eval"] = rounds.federated_eval()
    if history:
        final["train_loss"] = history[-1]["train_loss"]
        final["train_accuracy"] = history[-1]["train_accuracy"]
    final["communication"] = {
        "rounds": len(history), "clients_per_round": sampled,
        "bytes_down": int(sum(h.get("bytes_down", 0) for h in history)),
        "bytes_up": int(sum(h.get("bytes_up", 0) for h in history)),
        "bytes_down_per_round": per_round_bytes["bytes_down"],
        "bytes_up_per_round": per_round_bytes["bytes_up"],
        "compressed": config.compresses}
    if config.is_dp:
        from tff_ser.privacy import privacy_report
        final["privacy"] = privacy_report(config, len(task.train_clients), len(history))
    if stopped:
        final["stopped_early"] = stopped
    per_round = [h["seconds"] for h in history]
    this_process = time.perf_counter() - t_start
    times = {"train_seconds": float(np.sum(per_round)),
             "per_round_seconds": per_round,
             "mean_round_seconds": float(np.mean(per_round)) if per_round else 0.0,
             "build_seconds": build_seconds,
             "wall_seconds": earlier_wall + this_process,
             "wall_seconds_this_process": this_process,
             "resumed_from_round": done}
    if engine == "tff":
        times["tff_workers"] = runtime.worker_count(runtime.current_workers())
    if getattr(rounds, "compile_seconds", None) is not None:
        times["compile_seconds"] = rounds.compile_seconds
    result = RunResult(config=run_config, history=history, final_metrics=final, times=times,
                       extra={"machine": runtime.machine_info()})
    # Final weights ride along in memory only (a 26 M-parameter model has no
    # place in result.json).
    result.weights = weights
    return result


def _epsilons(config: FederatedConfig, num_clients: int, sampled: int):
    if not config.is_dp:
        return None
    from tff_ser.privacy import epsilon_by_round
    return epsilon_by_round(config.noise_multiplier, config.rounds, sampled, num_clients,
                            config.dp_delta)


def _callback_summary(cb) -> object:
    if hasattr(cb, "summary"):
        return cb.summary()
    return getattr(cb, "__name__", type(cb).__name__)


def _load_stopped(checkpoint_dir: str):
    path = os.path.join(checkpoint_dir, "stopped.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------
# checkpoint side files
# --------------------------------------------------------------------------

def _atomic_write_json(path: str, obj) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=_json_default)
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def _check_run_config(checkpoint_dir: str, run_config: dict) -> None:
    path = os.path.join(checkpoint_dir, "run_config.json")
    canonical = json.loads(json.dumps(run_config, default=_json_default))
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != canonical:
            diff = sorted(k for k in set(saved) | set(canonical) if saved.get(k) != canonical.get(k))
            raise ValueError(
                f"{checkpoint_dir} holds a run with a different configuration (differs in "
                f"{diff}); use another checkpoint_dir or delete it to start over")
    else:
        _atomic_write_json(path, canonical)


def _save_history(checkpoint_dir: str, history: List[dict]) -> None:
    _atomic_write_json(os.path.join(checkpoint_dir, "history.json"), history)


def _load_history(checkpoint_dir: str) -> List[dict]:
    path = os.path.join(checkpoint_dir, "history.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _save_wall(checkpoint_dir: str, round_num: int, wall_seconds: float) -> None:
    _atomic_write_json(os.path.join(checkpoint_dir, "wall.json"),
                       {"round": round_num, "wall_seconds": wall_seconds})


def _load_earlier_wall(checkpoint_dir: str) -> float:
    """Wall time the run's earlier processes spent up to their last save.

    Saved after the history and before the state, so it may count one round
    more than was kept: that round's time was spent all the same.
    Checkpoints written before this file existed give 0.
    """
    path = os.path.join(checkpoint_dir, "wall.json")
    if not os.path.exists(path):
        return 0.0
    with open(path) as f:
        return float(json.load(f)["wall_seconds"])


def _write_csv(path: str, history: List[dict]) -> None:
    # Rewritten whole each round so a resumed run never holds duplicate rounds.
    import pandas as pd
    tmp = f"{path}.tmp{os.getpid()}"
    pd.DataFrame(history).to_csv(tmp, index=False)
    os.replace(tmp, path)
