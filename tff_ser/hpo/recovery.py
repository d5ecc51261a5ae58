"""Killed workers: stale trials failed once and their points enqueued again; the heartbeat."""
from __future__ import annotations

import socket
import threading
import time
import warnings
from typing import List


from tff_ser.hpo.storage import (DEFAULT_GRACE_PERIOD, HEARTBEAT_ATTR, WORKER_ATTR,
                                  _optuna, _retry_failed_trial)


# --------------------------------------------------------------------------
# stale trials
# --------------------------------------------------------------------------

def machine_identity() -> str:
    """Host name plus boot time: tells apart containers that share a host name."""
    import psutil
    return f"{socket.gethostname()}@{int(psutil.boot_time())}"


def _process_alive(pid: int, started: float) -> bool:
    import psutil
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def _last_sign_of_life(trial) -> float:
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(float(beat or 0.0), start)



def recover_stale_trials(study, *, grace_period: int = DEFAULT_GRACE_PERIOD,
                         native_heartbeat: bool = False) -> List[int]:
    """Fail running trials whose worker is gone and re-enqueue their points.

    Returns the numbers of the trials failed here.  Safe to call from every
    worker at once: only one wins each RUNNING -> FAIL transition (the
    others' ``study.tell`` raises), and only the winner re-enqueues.
    ``native_heartbeat``: the storage runs Optuna's RDB heartbeat, whose
    :func:`optuna.storages.fail_stale_trials` handles silent trials (its
    callback re-enqueues them).
    """
    optuna = _optuna()
    failed: List[int] = []
    if native_heartbeat:
        before = {t.number for t in study.get_trials(deepcopy=False,
                                                     states=(optuna.trial.TrialState.FAIL,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # the storage's callback re-enqueues
        failed += [t.number for t in study.get_trials(deepcopy=False,
                                                      states=(optuna.trial.TrialState.FAIL,))
                   if t.number not in before]
    here, now = machine_identity(), time.time()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        who = trial.user_attrs.get(WORKER_ATTR) or {}
        dead_here = who.get("machine") == here and not _process_alive(who["pid"], who["started"])
        # Optuna's RDB heartbeat ignores a trial that never beat (its worker
        # died right after popping it); the start time stands in for a beat.
        silent = (not who or not native_heartbeat) \
            and now - _last_sign_of_life(trial) > grace_period
        if not (dead_here or silent):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna warns when telling a trial it did not ask
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        except (RuntimeError, ValueError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker failed (or the worker finished) it first
        _retry_failed_trial(study, trial, reason="worker process gone" if dead_here else
                            f"no heartbeat for {grace_period} s")
        failed.append(trial.number)
    return failed


class _Heartbeat:
    """Background thread that keeps a running trial's ``tff_ser:heartbeat`` fresh.

    Only for storages without Optuna's heartbeat (journal files); on RDB
    storages ``study.optimize`` runs Optuna's own.
    """

    def __init__(self, trial, interval: float):
        self.trial, self.interval = trial, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _beat(self) -> None:
        self.trial.set_user_attr(HEARTBEAT_ATTR, time.time())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._beat()
            except Exception:  # the trial finished (or was failed) meanwhile: stop beating
                return

    def __enter__(self):
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
