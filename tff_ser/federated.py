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

import os
import time
from typing import Callable, List, Optional, Sequence

import numpy as np

from tff_ser.engines.base import choose_engine, make_engine
from tff_ser.fedconfig import (OPTIMIZERS, FederatedConfig, client_order,  # noqa: F401 (re-exported)
                               initial_model_weights, sample_clients)
from tff_ser.task import Task


from tff_ser.evaluation import evaluate_weights


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
                    callbacks: Optional[Sequence[Callable]] = None, workers=None,
                    allow_nonfinite: bool = False, checkpoint_every: int = 1):
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
        directory is refused, except a larger ``rounds``: that extends the
        saved run (round r trains the same clients and batches whatever NGE
        is, so the NGE = 200 run goes on from the NGE = 50 run's state).
    csv_path : str, optional
        Per-round metrics, rewritten after every round.
    tensorboard_dir : str, optional
        Per-round scalars written with ``tf.summary``.
    progress : bool
        Show a progress bar over rounds.
    federated_eval : bool
        Also run TFF's ``build_fed_eval`` on the validation clients at the end
        (TFF engine only).
    engine : {"auto", "tff", "batched", "tf", "jax"}
        Who computes the rounds (:func:`tff_ser.engines.base.choose_engine`).
        ``"auto"`` (default): the fastest engine that implements the model
        and configuration -- ``"batched"`` (all clients in one graph;
        Dense/Dropout models such as paper 000's MLP), else ``"tf"`` (clients
        one after another in one traced TensorFlow function; every model of
        the package, CPU or GPU), else ``"jax"`` (Keras 3 on its JAX backend,
        ``KERAS_BACKEND=jax``: every sampled client at once, vmapped; CPU or
        GPU, TensorFlow not needed), else ``"tff"``.  ``"tff"``: TFF's FedAvg
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
    allow_nonfinite : bool
        By default a run stops (:class:`~tff_ser.errors.TrainingDiverged`) as
        soon as its training loss is non-finite, or when every client's update
        was rejected as non-finite for ``REJECTED_ROUNDS`` rounds in a row (or
        in the last round): such a run's metrics describe an untrained model.
        ``True`` keeps training, for those who study divergence.
    checkpoint_every : int
        With ``checkpoint_dir``: save the state every this many rounds (and
        after the last round, and when a callback stops the run).  A killed
        run loses at most this many rounds; 1 (default) loses none.

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
    tff_ser.errors.OutputError
        ``checkpoint_dir`` or ``csv_path``'s folder is not writable or its disk
        is too full for the run (checked before the first round).
    tff_ser.errors.DiskFull
        The disk filled up mid-run; the message says which round is saved.
    tff_ser.errors.TrainingDiverged
        See ``allow_nonfinite``.
    tff_ser.errors.TrainingInterrupted
        Ctrl-C during training; the message says where it stopped and how to resume.

    Notes
    -----
    Every history row also holds the round's communication (``bytes_down``,
    ``bytes_up``: :mod:`tff_ser.communication`) and, under DP-FedAvg, the
    run's ``epsilon`` so far (:mod:`tff_ser.privacy`); their totals are in
    ``final_metrics["communication"]`` and ``final_metrics["privacy"]``.
    """
    from tff_ser import runtime
    runtime.set_threads(threads)
    from tff_ser.callbacks import check_monitor
    from tff_ser.fedconfig import check_config_for_task

    check_config_for_task(config, len(task.train_clients))
    if int(checkpoint_every) < 1:
        raise ValueError(f"checkpoint_every must be >= 1; got {checkpoint_every}")
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
                                callbacks=callbacks, allow_nonfinite=allow_nonfinite,
                                checkpoint_every=int(checkpoint_every))
    finally:
        if previous_workers is not None:
            runtime.set_workers(previous_workers)


#: Rounds in a row with every client update rejected (non-finite) before a run stops.
REJECTED_ROUNDS = 3


def _check_round(row: dict, round_num: int, last: int, config, rejected_streak: int) -> int:
    """Raise TrainingDiverged for a round that says the run is no longer training.

    Returns the updated count of rounds in a row whose every client update
    was rejected.
    """
    from tff_ser.errors import TrainingDiverged
    if row.get("clients", 0) and row.get("train_examples", 1) == 0:
        rejected_streak += 1
        if rejected_streak >= REJECTED_ROUNDS or round_num == last:
            first = round_num - rejected_streak + 1
            client = (f"the client learning rate (client_lr={config.client_lr:g} for "
                      f"{config.client_optimizer}, --client-lr)")
            server = (f"the server learning rate (server_lr={config.server_lr:g} for "
                      f"{config.server_optimizer}, --server-lr)")
            # rejected from the first round: the clients' own steps blow up; after rounds
            # that trained, a server step has moved the weights where every client fails
            cause = client if first == 1 else f"{server} or {client}"
            raise TrainingDiverged(
                f"every client's update was rejected as non-finite in rounds {first}..{round_num} "
                f"(0 training examples counted), so the model is not training: {cause} is too "
                "large. Lower it, or pass allow_nonfinite=True (--allow-nonfinite) to keep such "
                "a run going")
        return rejected_streak
    loss = row.get("train_loss")
    if loss is not None and not np.isfinite(loss):
        raise TrainingDiverged(
            f"the training loss is {loss} in round {round_num}: the model's weights diverged. "
            f"Lower the learning rates (server {config.server_optimizer} "
            f"server_lr={config.server_lr:g}, --server-lr; client {config.client_optimizer} "
            f"client_lr={config.client_lr:g}, --client-lr), or pass allow_nonfinite=True "
            "(--allow-nonfinite) to keep such a run going")
    return 0


def _train_federated(task, config, engine, t_start, *, checkpoint_dir, csv_path,
                     tensorboard_dir, progress, federated_eval, callbacks, allow_nonfinite,
                     checkpoint_every=1):
    from tqdm.auto import tqdm
    from tff_ser.callbacks import CsvLogger, TensorBoardLogger
    from tff_ser.checkpoint import LoopPosition, RunCheckpoint, reporting_stops
    from tff_ser.communication import round_bytes
    from tff_ser.fedconfig import sampled_per_round
    from tff_ser.errors import check_stop_requested
    from tff_ser.rundir import check_writable
    run_config = {"mode": "federated", "engine": engine, "model": task.model_name,
                  **config.to_dict(), "num_train_clients": len(task.train_clients),
                  "num_val_clients": len(task.val_clients), "task": task.info}
    checkpoint = RunCheckpoint(checkpoint_dir, run_config) if checkpoint_dir else None
    if checkpoint:
        check_writable(checkpoint_dir, what="checkpoint folder")
    if csv_path:
        check_writable(os.path.dirname(os.path.abspath(csv_path)), what="CSV folder")
    rounds = make_engine(engine, task, config)
    build_seconds = time.perf_counter() - t_start

    history: List[dict] = []
    done, earlier_wall = 0, 0.0
    if checkpoint:
        checkpoint.prepare()
        done, history, earlier_wall = checkpoint.resume(rounds, config.rounds)
    if done == 0:
        rounds.start()
    if checkpoint:
        checkpoint.check_space(rounds.weights(), config.rounds - done)
    stopped = checkpoint.stopped() if checkpoint and done else None
    # the loggers see every row before the user's callbacks (which may stop the run)
    loggers = ([TensorBoardLogger(tensorboard_dir)] if tensorboard_dir else []) \
        + ([CsvLogger(csv_path)] if csv_path else [])
    for cb in loggers + callbacks:
        if history and hasattr(cb, "restore"):
            cb.restore([dict(h) for h in history])
    if stopped is None and any(getattr(cb, "stopped_round", None) for cb in callbacks):
        # killed between the stopping round's save and its stopped.json
        stopped = {"round": done, "by": [_callback_summary(cb) for cb in callbacks]}
    sampled = sampled_per_round(len(task.train_clients), config.client_fraction)
    per_round_bytes = round_bytes(rounds.weights(), sampled, compressed=config.compresses)
    epsilons = _epsilons(config, len(task.train_clients), sampled)

    last = done if stopped else config.rounds
    bar = tqdm(range(done + 1, last + 1), desc=f"FL {task.model_name}", unit="round",
               disable=not progress, initial=done, total=config.rounds)
    rejected = 0
    position = LoopPosition("round", config.rounds, checkpoint_dir, current=done + 1, saved=done)
    try:
        with reporting_stops(position, bar):
            for round_num in bar:
                position.current = round_num
                check_stop_requested()
                row = rounds.round(round_num)
                if not allow_nonfinite:
                    rejected = _check_round(row, round_num, last, config, rejected)
                row.update(per_round_bytes)
                if epsilons is not None:
                    row["epsilon"] = epsilons[round_num - 1]
                ev = None
                if config.eval_every and (round_num % config.eval_every == 0) and task.val_clients:
                    ev = evaluate_weights(task, rounds.weights())
                    row["val_accuracy"] = ev["pooled"]["accuracy"]
                    row["val_client_mean_accuracy"] = ev["client_mean_accuracy"]
                    row["val_f1_macro"] = ev["pooled"]["f1_macro"]
                history.append(row)
                bar.set_postfix(train_loss=f"{row['train_loss']:.3f}",
                                train_acc=f"{row['train_accuracy']:.3f}")
                for logger in loggers:
                    logger(round_num, dict(row))
                    if ev is not None and hasattr(logger, "per_speaker"):
                        logger.per_speaker(round_num, "val_speaker_accuracy",
                                           ev["per_client_accuracy"])
                stop = False
                if callbacks:
                    w = rounds.weights()
                    for cb in callbacks:
                        stop = (cb(round_num, dict(row), w) is True) or stop
                if checkpoint and (stop or round_num == last or round_num % checkpoint_every == 0):
                    checkpoint.save(rounds, round_num, history,
                                    earlier_wall + time.perf_counter() - t_start)
                    position.saved = round_num
                if stop:
                    stopped = {"round": round_num,
                               "by": [_callback_summary(cb) for cb in callbacks]}
                    if checkpoint:
                        checkpoint.mark_stopped(stopped)
                    break
    finally:
        for logger in loggers:
            if hasattr(logger, "close"):
                logger.close()
    bar.close()
    result = _finish(task, config, engine, rounds, history, stopped, per_round_bytes, sampled,
                     federated_eval=federated_eval, t_start=t_start,
                     build_seconds=build_seconds, earlier_wall=earlier_wall, done=done,
                     run_config=run_config)
    personalized = result.final_metrics.get("personalized")
    if tensorboard_dir and personalized and history:
        logger = TensorBoardLogger(tensorboard_dir)
        for key in ("personal_uar", "global_uar"):
            logger.per_speaker(len(history), key,
                               {c["client"]: c[key] for c in personalized["clients"]})
        logger.close()
    return result


def _finish(task, config, engine, rounds, history, stopped, per_round_bytes, sampled, *,
            federated_eval, t_start, build_seconds, earlier_wall, done, run_config):
    """The run's result: final evaluation, communication, privacy, times."""
    from tff_ser import runtime
    from tff_ser.results import RunResult
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
    if hasattr(rounds, "final_metrics"):
        final.update(rounds.final_metrics())
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
