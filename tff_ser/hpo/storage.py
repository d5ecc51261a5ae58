"""Where a grid study lives and how it is made: storages, the study, its queue of points.

See :mod:`tff_ser.hpo` for the whole design (every point exactly once,
killed workers, samplers)."""
from __future__ import annotations

import datetime
import os
import warnings
from typing import Mapping, Optional, Sequence


from tff_ser.hpo.objective import (RunSettings, same_task)
from tff_ser.hpo.space import VARIABLES, GridSpace, point_key


#: Study names of the two grids.
STUDY_NAMES = {"paper000": "paper000_grid", "quick": "paper000_grid_quick"}
#: Default results folders of the two grids.
DEFAULT_DIRS = {"paper000": "results/hpo_grid", "quick": "results/_scratch/hpo_grid-quick"}
JOURNAL_FILE = "study.journal"
TRAJECTORY_DIR = "trajectories"

#: Study user attribute holding the settings every worker must share.
SETTINGS_ATTR = "tff_ser:settings"
#: Trial system attributes written by workers.
WORKER_ATTR, HEARTBEAT_ATTR = "tff_ser:worker", "tff_ser:heartbeat"
#: User attribute holding a finished point's accuracy per validation speaker.
PER_SPEAKER_ATTR = "validation_per_client_accuracy"

DEFAULT_HEARTBEAT_INTERVAL = 30
DEFAULT_GRACE_PERIOD = 120


def _optuna():
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --------------------------------------------------------------------------
# storage
# --------------------------------------------------------------------------

def default_storage(directory: str) -> str:
    """The journal file of a study folder."""
    return os.path.join(directory, JOURNAL_FILE)


def is_rdb_url(storage: str) -> bool:
    return "://" in storage


def mask_url(storage: str) -> str:
    """``storage`` fit to print: an RDB URL's password replaced by ``***``."""
    if not is_rdb_url(str(storage)):
        return str(storage)
    try:
        from sqlalchemy.engine import make_url
        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: mask user:password@ by hand
        import re
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(storage))


def open_storage(storage: str, *, heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
                 grace_period: int = DEFAULT_GRACE_PERIOD):
    """An Optuna storage from a journal file path or an RDB URL.

    Parameters
    ----------
    storage : str
        ``path/to/study.journal`` or ``postgresql://...`` / ``sqlite:///...``.
    heartbeat_interval, grace_period : int
        Seconds; RDB storages get Optuna's own heartbeat with a callback
        that re-enqueues a stale trial's point.
    """
    optuna = _optuna()
    if heartbeat_interval < 1 or grace_period <= heartbeat_interval:
        raise ValueError(f"need heartbeat_interval >= 1 and grace_period > heartbeat_interval; "
                         f"got {heartbeat_interval} and {grace_period}")
    if is_rdb_url(storage):
        heartbeat = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
        try:
            with warnings.catch_warnings():
                # Optuna marks its heartbeat experimental; it is what RDB studies need.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                try:
                    return optuna.storages.RDBStorage(
                        storage, **heartbeat, heartbeat_stale_trial_callback=_retry_failed_trial)
                except TypeError:  # Optuna < 4.9 names the callback differently
                    return optuna.storages.RDBStorage(
                        storage, **heartbeat, failed_trial_callback=_retry_failed_trial)
        except ModuleNotFoundError as exc:
            raise RuntimeError(
                f"the storage URL {storage.split('://')[0]}://... needs a database driver that "
                f"is not installed ({exc.name}); for PostgreSQL run "
                "`pip install psycopg2-binary` in this environment") from exc
        except Exception as exc:
            import sqlalchemy.exc
            if not isinstance(exc, (sqlalchemy.exc.SQLAlchemyError, ValueError)):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"cannot open the study storage {mask_url(storage)}: {first}. Check the URL "
                "(dialect://user:password@host:port/database, or sqlite:///path.db) and that "
                "the database server is running and reachable") from exc
    from tff_ser.hpo.journal import DurableJournalFileBackend
    parent = os.path.dirname(os.path.abspath(storage))
    os.makedirs(parent, exist_ok=True)
    return optuna.storages.JournalStorage(DurableJournalFileBackend(storage))


def _native_heartbeat(storage) -> bool:
    get = getattr(storage, "get_heartbeat_interval", None)
    return bool(get is not None and get() is not None)


# --------------------------------------------------------------------------
# creating the study
# --------------------------------------------------------------------------

def _distributions(space: GridSpace) -> dict:
    optuna = _optuna()
    return {v: optuna.distributions.CategoricalDistribution(list(space.levels[v]))
            for v in VARIABLES}


#: User attribute of an enqueued trial holding its grid point.
POINT_ATTR = "tff_ser:point"


def _trial_point(trial) -> Optional[dict]:
    """The grid point of a trial (the point it was queued with, or its params)."""
    params = trial.user_attrs.get(POINT_ATTR) or trial.params \
        or trial.system_attrs.get("fixed_params")  # studies made before tff_ser:point
    if not params or any(v not in params for v in VARIABLES):
        return None
    return {v: params[v] for v in VARIABLES}


def load_study(storage, study_name: str, space: Optional[GridSpace] = None):
    """Open an existing grid study (its space is read from the study if not given)."""
    optuna = _optuna()
    if isinstance(storage, str):
        if not is_rdb_url(storage) and not os.path.exists(storage):
            raise ValueError(f"no study journal at {storage}; create the study with "
                             "`tff-ser hpo run` first, or pass --dir/--storage of an existing one")
        storage = open_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError as exc:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ValueError(f"no study named {study_name!r} in this storage (it holds {names}); "
                         "create it with `tff-ser hpo run` first") from exc
    settings = study.user_attrs.get(SETTINGS_ATTR)
    if settings is None:
        raise ValueError(f"study {study_name!r} was not made by tff_ser.hpo (no {SETTINGS_ATTR})")
    return study


def existing_study(storage, study_name: str):
    """The grid study if the storage holds it, else None (never creates anything).

    ``storage`` is a journal path / RDB URL or an opened storage.  Pollers
    should open the storage once (``open_storage``) and pass it here: each
    opening of an RDB URL is a new connection pool, and a loop that opens one
    per call runs a PostgreSQL server out of connections.
    """
    optuna = _optuna()
    if isinstance(storage, str):
        if not is_rdb_url(storage) and not os.path.exists(storage):
            return None
        storage = open_storage(storage)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    return load_study(storage, study_name) if study_name in names else None


def study_settings(study) -> dict:
    """The settings a grid study was created with (space, corpus, run settings, data)."""
    return study.user_attrs[SETTINGS_ATTR]


def create_grid_study(storage, study_name: str, *, space: GridSpace, settings: RunSettings,
                      corpus: str, fingerprint: Mapping, data_dir: Optional[str] = None,
                      split_seed: int = 0, train_client_sizes: Sequence[int] = ()):
    """Create (or open) the grid study and enqueue every point not yet present.

    Returns ``(study, number of points enqueued now)``.  Opening a study made
    with other settings (space, seed, server learning rate, engine, data) is
    refused.  ``train_client_sizes`` (clips per training client) is kept
    for the report's estimate of the TFF process's time.
    """
    optuna = _optuna()
    storage = open_storage(storage) if isinstance(storage, str) else storage
    study = optuna.create_study(
        study_name=study_name, storage=storage, load_if_exists=True,
        directions=["maximize", "minimize"])
    wanted = {"space": space.to_dict(), "run": settings.to_dict(), "split_seed": split_seed,
              "task": dict(fingerprint), "size": space.size}
    saved = study.user_attrs.get(SETTINGS_ATTR)
    if saved is None:
        study.set_user_attr(SETTINGS_ATTR, {
            **wanted, "corpus": corpus, "data_dir": data_dir,
            "train_client_sizes": [int(n) for n in train_client_sizes],
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds")})
        study.set_user_attr("objectives", ["accuracy (max)", "computation_time s (min)"])
    else:
        differs = [k for k in ("run", "split_seed", "size") if saved.get(k) != wanted[k]]
        if GridSpace.from_dict(saved["space"]) != space:
            differs.insert(0, "space")
        if differs or not same_task(saved["task"], wanted["task"]):
            raise ValueError(
                f"study {study_name!r} already exists with other settings (differs in "
                f"{differs or ['task data']}); use another --dir/--storage or --study name")
    return study, enqueue_grid(study, space)


def enqueue_grid(study, space: GridSpace) -> int:
    """Enqueue every point of ``space`` that has no waiting, running or finished trial."""
    optuna = _optuna()
    live = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING,
            optuna.trial.TrialState.COMPLETE)
    present = set()
    for trial in study.get_trials(deepcopy=False, states=live):
        point = _trial_point(trial)
        if point is not None:
            present.add(point_key(point))
    added = 0
    for point in space.points():
        if point_key(point) not in present:
            study.enqueue_trial(point, user_attrs={POINT_ATTR: point})
            added += 1
    return added


def _retry_failed_trial(study, trial, reason: str = "no heartbeat") -> None:
    """Queue a failed (stale) trial's point again, unless it is already live or done.

    The new trial records ``retry_of`` (the failed trial's number) and
    ``retry_reason``.
    """
    optuna = _optuna()
    point = _trial_point(trial)
    if point is None:
        return
    live = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING,
            optuna.trial.TrialState.COMPLETE)
    for other in study.get_trials(deepcopy=False, states=live):
        if other.number != trial.number and _trial_point(other) is not None \
                and point_key(_trial_point(other)) == point_key(point):
            return
    study.enqueue_trial(point, user_attrs={POINT_ATTR: point, "retry_of": trial.number,
                                           "retry_reason": reason})


def completed_points(study) -> int:
    """Number of distinct grid points with a finished (COMPLETE) trial."""
    optuna = _optuna()
    return len({point_key(_trial_point(t)) for t in
                study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if _trial_point(t) is not None})
