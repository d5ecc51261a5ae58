"""Run a declared experiment end to end and write its results folder.

:func:`run_experiment` takes a config (an :class:`~tff_ser.experiments.configs.ExperimentConfig`,
usually a baseline's) and writes ``<out>/`` (the report: :mod:`tff_ser.experiments.report`):

* ``runs/<run_id>/`` -- each run's :class:`~tff_ser.results.RunResult`
  (``result.json``, ``history.csv``);
* ``results.csv`` -- one row per run: model, setup, accuracy, macro
  precision / recall / F1, UAR, client-mean accuracy, training time;
* PNG figures (confusion matrices, F1 against k, learning curves, bars);
* ``summary.md`` -- which corpus (a generated one says so), the exact
  command, package version, date, wall time, the table and the figures.

``summary.md`` is written last and removed when a run starts, so a folder
holding one is a finished experiment; a failed run leaves ``FAILED`` (the
traceback) instead and re-raises; an interrupted one (Ctrl-C, SIGTERM) leaves
``PARTIAL``, which says so.  ``only`` trains a subset of the runs (to
split a long experiment over processes or sessions); until every run is
saved, the folder holds ``PARTIAL`` (done and missing runs) instead of the
experiment-level files.  A finished run whose settings and corpus
are unchanged is read back instead of retrained, so an interrupted
full-size experiment picks up where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import sys
import time
import traceback
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from tff_ser.corpus.summary import (GENERATED_NOTICE, corpus_fingerprint,  # noqa: F401
                                    describe_corpus)
from tff_ser.errors import check_stop_requested
from tff_ser.task import limit_speakers

if TYPE_CHECKING:
    from tff_ser.results import RunResult
from tff_ser.experiments.configs import CENTRALIZED, RunSpec
from tff_ser.experiments.report import (FAILED_FILE, PARTIAL_FILE, RUNS_DIR,  # noqa: F401
                                        SUMMARY_FILE, TABLE_COLUMNS, TABLE_FILE, collapse_note,
                                        draw_figures, machines_line, problems_note, table_row,
                                        write_partial, write_summary, write_table)

@dataclasses.dataclass
class ExperimentOutcome:
    """What :func:`run_experiment` produced.

    Attributes
    ----------
    config : experiment config
    out_dir : pathlib.Path
    table : pandas.DataFrame
        ``results.csv``'s contents (columns :data:`TABLE_COLUMNS`).
    results : dict
        run_id -> :class:`~tff_ser.results.RunResult`.
    figures : dict
        Figure name -> PNG path.
    corpus : str
        One line saying which corpus the runs used.
    wall_seconds : float
    reused : list of str
        Runs read back from an earlier invocation instead of trained.
    missing : list of str
        Runs neither selected by ``only`` nor saved earlier; non-empty means
        the experiment is not finished (no ``results.csv``, figures or
        ``summary.md`` were written, ``PARTIAL`` says what is left).
    """

    config: object
    out_dir: pathlib.Path
    table: pd.DataFrame
    results: Dict[str, object]
    figures: Dict[str, pathlib.Path]
    corpus: str
    wall_seconds: float
    reused: List[str] = dataclasses.field(default_factory=list)
    missing: List[str] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def summary_path(self) -> pathlib.Path:
        return self.out_dir / SUMMARY_FILE


# ---------------------------------------------------------------------------
# corpus and features
# ---------------------------------------------------------------------------

def _check_models(config) -> None:
    """Refuse unknown models, and models the chosen engine cannot train, before any data work."""
    from tff_ser.models import MODELS
    unknown = [m for m in config.models if m not in MODELS]
    if unknown:
        raise ValueError(f"{config.name} names unknown model(s) {unknown}; "
                         f"choose from {sorted(MODELS)}")
    if config.engine in ("batched", "tf", "jax"):
        from tff_ser.engines.base import unsupported_reason
        from tff_ser.fedconfig import FederatedConfig
        from tff_ser.task import Task
        for model in config.models:
            spec = MODELS[model]
            shape = spec.input_shape
            probe = Task(model, np.zeros((2,) + shape, np.float32), np.zeros(2, np.int32),
                         {"a": np.arange(2)}, {})
            reason = unsupported_reason(config.engine, probe, FederatedConfig(
                rounds=1, client_optimizer=config.client_optimizer,
                server_optimizer=config.server_optimizer))
            if reason:
                raise ValueError(f"engine={config.engine!r} cannot train model {model!r} "
                                 f"({reason}); use engine='auto' or 'tff'")


def run_feature_kind(spec: RunSpec, by_id: Dict[str, RunSpec]) -> str:
    """The features ``spec`` trains on: its own ``feature_kind``, its model's, or (fusion)
    its first branch's, whose clients and labels it shares."""
    from tff_ser.models import MODELS
    if spec.branches:
        first = f"{spec.branches[0]}-s{spec.seed}"
        if first not in by_id:
            raise ValueError(f"run {spec.run_id!r} fuses run {first!r}, which is not a run of "
                             "this experiment")
        return run_feature_kind(by_id[first], by_id)
    return spec.feature_kind or MODELS[spec.model].feature_kind


def _load_features(config, data_dir: Optional[str], progress: bool):
    """(corpus line, corpus fingerprint, {feature kind: FeatureSet}) for the config's runs.

    With several kinds, every set is cut to the clips all of them have
    (:func:`tff_ser.features.pipeline.common_clips`): runs of one experiment
    share held-out speakers, clients and clip rows whatever they read.
    """
    from tff_ser.corpus import resolve_corpus
    from tff_ser.features.pipeline import common_clips, extract
    load = resolve_corpus(data_dir, size=config.size, corpus_seed=0, progress=progress)
    clips = limit_speakers(load.clips, config.max_speakers)
    specs = config.runs()
    by_id = {spec.run_id: spec for spec in specs}
    kinds = list(dict.fromkeys(run_feature_kind(spec, by_id) for spec in specs))
    features = {kind: extract(clips, kind, progress=progress) for kind in kinds}
    if len(features) > 1:
        features = dict(zip(features, common_clips(*features.values())))
    from tff_ser.corpus.problems import corpus_problems, format_problems
    for fs in features.values():
        fs.corpus_problems = corpus_problems(load, fs, load.emotions)
        text = format_problems(fs.corpus_problems)
        if text:
            print(f"{fs.kind} features: {text}", file=sys.stderr, flush=True)
    return describe_corpus(load, clips), corpus_fingerprint(load, clips), features


# ---------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------

def _run_key(spec: RunSpec, corpus: dict, features, upstream: Optional[dict] = None) -> dict:
    """What a saved run must match to be reused instead of retrained.

    The run's settings (:meth:`RunSpec.key_dict`: not its name, not the
    engine that computed it), the corpus fingerprint and the features.
    """
    key = {"run_spec": spec.key_dict(), "corpus": corpus,
           "feature_kind": features.kind, "n_clips": len(features.clips)}
    if upstream:  # a run that reads other runs matches only while they do
        key["upstream"] = upstream
    return key


def _reusable(run_dir: pathlib.Path, key: dict):
    from tff_ser.results import RunResult
    if not (run_dir / "result.json").is_file():
        return None
    try:
        saved = RunResult.load(run_dir)
    except (ValueError, OSError):
        return None
    return saved if saved.extra.get("run_key") == key else None


def train_run(spec: RunSpec, features, *, run_dir: Optional[pathlib.Path] = None,
              checkpoint: bool = False, progress: bool = True, branches=None):
    """Build the task of ``spec`` from ``features`` and train it; returns the RunResult.

    Parameters
    ----------
    spec : RunSpec
    features : FeatureSet
        Features of the corpus in the kind ``spec.model`` reads.
    run_dir : pathlib.Path, optional
        With ``checkpoint``, the state is saved under ``run_dir/checkpoint``
        every round (a centralized run's every epoch), so a killed run
        resumes; the checkpoint is deleted once the run has finished.
    checkpoint : bool
    progress : bool
        Progress bar over rounds.
    branches : list of (RunSpec, FeatureSet), optional
        A fusion run's branch runs and their features (their saved models are
        read from ``run_dir``'s sibling folders).
    """
    model = None
    if spec.genotype_from:
        model = spec.model_def(genotype=searched_genotype(run_dir, spec).to_dict())
    task = spec.recipe(model).task(features, seed=spec.seed)
    if spec.branches:
        task = _fusion_task(task, spec, run_dir, branches)
    personal_test = None
    if spec.personal is not None:  # before the noise: personal-test labels stay clean
        task, personal_test = spec.personal.prepare(task, seed=spec.seed)
    if spec.label_noise:
        from tff_ser.task import choose_clients, with_label_noise
        task = with_label_noise(task, spec.label_noise, seed=spec.seed,
                                clients=choose_clients(task, spec.noisy_clients, seed=spec.seed))
    if spec.teacher:
        task = _distillation_task(task, spec, run_dir)
    config = spec.federated_config()
    if spec.search is not None:
        from tff_ser import nas
        if spec.federated:  # FedNAS over the run's clients
            task = nas.search_task(task, spec.search, seed=spec.seed)
        else:  # DARTS: one client with every training clip, every round
            task = nas.pooled_search_task(task, spec.search, seed=spec.seed)
            config = dataclasses.replace(config, client_fraction=1.0)
    checkpoint_dir = str(run_dir / "checkpoint") if (checkpoint and run_dir) else None
    if spec.mode == CENTRALIZED and spec.search is None:
        from tff_ser.centralized import train_centralized
        result = train_centralized(task, spec.centralized_config(), progress=progress,
                                   checkpoint_dir=checkpoint_dir)
    else:
        from tff_ser.federated import train_federated
        result = train_federated(task, config, checkpoint_dir=checkpoint_dir,
                                 progress=progress, federated_eval=spec.federated_eval,
                                 engine=spec.engine)
        if spec.personal is not None:
            result.final_metrics["personalized"] = spec.personal.evaluate(
                task, personal_test, result, seed=spec.seed)
    if checkpoint_dir:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    if spec.genotype_from:
        result.extra["genotype"] = task.model_def.hyperparameters["genotype"]
    if getattr(result, "weights", None) is not None:  # the trained network's size
        result.extra["parameters"] = int(sum(np.size(w) for part in result.weights for w in part))
    if spec.keep_weights and run_dir is not None:
        save_weights(run_dir / WEIGHTS_FILE, spec.model, result.weights,
                     kwargs=task.model_def.hyperparameters)
    # The final weights (104 MB for the dense model) are not part of the record.
    result.extra.pop("weights", None)
    return result


#: A run's final weights, kept for the runs that distil from it (``RunSpec.keep_weights``).
WEIGHTS_FILE = "weights.npz"


def save_weights(path: pathlib.Path, model: str, weights, kwargs: Optional[dict] = None) -> None:
    """Write ``(trainable, non_trainable)`` of preset ``model`` (built with ``kwargs``) to
    ``path`` atomically."""
    trainable, non_trainable = weights
    arrays = {f"t{i}": w for i, w in enumerate(trainable)}
    arrays.update({f"n{i}": w for i, w in enumerate(non_trainable)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, model=np.array(model), kwargs=np.array(json.dumps(kwargs or {})), **arrays)
    os.replace(tmp, path)


def teacher_model_name(path: pathlib.Path) -> str:
    """The preset model whose weights ``path`` (a ``weights.npz``) holds."""
    with np.load(path) as saved:
        return str(saved["model"])


def load_kept_model(run_dir, *, input_shape=None, num_classes: int = 4):
    """The trained Keras model of a run that kept its weights (``RunSpec.keep_weights``).

    Raises FileNotFoundError naming the file when the run kept none.
    """
    from tff_ser.models import build_model
    path = pathlib.Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: only runs with keep_weights=True (a "
                                "teacher) keep their weights; rerun the experiment to make it")
    with np.load(path) as saved:
        name = str(saved["model"])
        kwargs = json.loads(str(saved["kwargs"])) if "kwargs" in saved.files else {}
        trainable = [saved[f"t{i}"] for i in range(sum(k.startswith("t") for k in saved.files))]
        non_trainable = [saved[f"n{i}"]
                         for i in range(sum(k.startswith("n") for k in saved.files))]
    model = build_model(name, input_shape=input_shape, num_classes=num_classes, seed=0,
                        **kwargs)
    for var, value in zip(model.trainable_weights + model.non_trainable_weights,
                          trainable + non_trainable):
        var.assign(value)
    return model


def searched_genotype(run_dir: pathlib.Path, spec: RunSpec):
    """The genotype the search run ``spec.genotype_from`` found (its saved result)."""
    from tff_ser.nas import searched_genotype as from_result
    from tff_ser.results import RunResult
    folder = pathlib.Path(run_dir).parent / spec.genotype_from
    if not (folder / "result.json").is_file():
        raise ValueError(f"run {spec.run_id!r} builds the genotype of search run "
                         f"{spec.genotype_from!r}, which has not run; run the experiment "
                         f"without --only, or with --only {spec.genotype_from!r}")
    return from_result(RunResult.load(folder))


def _fusion_task(task, spec: RunSpec, run_dir: pathlib.Path, branches):
    """``task`` whose features are the saved branch runs' outputs on every clip (paper 003)."""
    from tff_ser.fusion import branch_outputs, fusion_task
    outputs = []
    for branch, fs in branches:
        branch_task = branch.recipe().task(fs, seed=branch.seed)
        if not np.array_equal(branch_task.y, task.y) or \
                branch_task.train_clients.keys() != task.train_clients.keys():
            raise ValueError(f"run {spec.run_id!r} fuses run {branch.run_id!r}, whose clips, "
                             "labels or clients differ from its own; give branches the same "
                             "partition and split")
        model = load_kept_model(run_dir.parent / branch.run_id,
                                input_shape=branch_task.input_shape,
                                num_classes=branch_task.num_classes)
        outputs.append(branch_outputs(model, branch_task.x, name=branch.run_id))
    return fusion_task(task, outputs, spec.model_def(), level=spec.fusion)


def teacher_run_id(spec: RunSpec) -> str:
    """The run a distilling ``spec`` learns from: its teacher's condition at the same seed."""
    return f"{spec.teacher}-s{spec.seed}"


def _distillation_task(task, spec: RunSpec, run_dir: Optional[pathlib.Path]):
    """``task`` with ``spec.model`` distilling from the saved teacher run (paper 002)."""
    from tff_ser.distillation import distillation_task, teacher_outputs
    from tff_ser.models import MODELS
    if run_dir is None:
        raise ValueError(f"run {spec.run_id!r} distils from run {teacher_run_id(spec)!r} and "
                         "needs the experiment's runs folder to find its weights")
    path = run_dir.parent / teacher_run_id(spec) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"run {spec.run_id!r} distils from run {teacher_run_id(spec)!r}, whose weights "
            f"{path} are not saved; train the teacher first (run the experiment without "
            f"--only, or with --only {teacher_run_id(spec)!r})")
    teacher = load_kept_model(path.parent, input_shape=task.input_shape,
                              num_classes=task.num_classes)
    model = teacher_model_name(path)
    if MODELS[model].feature_kind != MODELS[spec.model].feature_kind:
        raise ValueError(f"teacher {model!r} reads {MODELS[model].feature_kind!r} features but "
                         f"student {spec.model!r} reads {MODELS[spec.model].feature_kind!r}; "
                         "a teacher scores the student's own inputs")
    return distillation_task(task, spec.model, teacher_outputs(teacher, task.x, spec.kd,
                                                               name=teacher_run_id(spec)),
                             spec.kd)


# ---------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------

def run_experiment(config, out_dir, *, data_dir: Optional[str] = None,
                   command: Optional[str] = None, progress: bool = True,
                   reuse: bool = True, checkpoint: Optional[bool] = None,
                   only: Optional[Sequence[str]] = None,
                   jobs: int = 1) -> ExperimentOutcome:
    """Run every run of ``config`` and write the results folder ``out_dir``.

    Parameters
    ----------
    config : ExperimentConfig
        A registered experiment's config (a baseline's), or one of your own.
    out_dir : str or path
        Created if needed.  Its ``summary.md`` and ``FAILED`` are removed
        first; figures and ``results.csv`` are rewritten.
    data_dir : str, optional
        Corpus directory; None resolves real CREMA-D at ``data/CREMA-D`` or
        the generated corpus (see :func:`tff_ser.corpus.resolve_corpus`).
    command : str, optional
        The command that started this, for the summary (default: a Python
        call naming the config).
    progress : bool
        tqdm bars over runs and rounds.
    reuse : bool
        Read back a run already saved under ``out_dir/runs`` with the same
        settings and corpus instead of training it again, and resume a
        run from its checkpoint.  False retrains everything from round 1.
    checkpoint : bool, optional
        Save each run's state every round (epoch) so a killed run resumes mid-run.
        Default: on for full-size configs, off for quick ones.
    only : sequence of str, optional
        Shell-style patterns of run ids (``"lstm-*"``, ``"dense-k?"``): train
        only the matching runs; the others are read back if saved, else
        listed as missing.  A pattern matching no run is an error.
    jobs : int
        Runs trained at once, each in its own process with
        ``cores // jobs`` TensorFlow threads (``-1``: one per core).  The
        metrics do not depend on it (``tests/integration/test_experiments.py``); small
        models such as the MLP train faster this way, since one run cannot
        keep two cores busy.  Per-round progress bars are off with ``jobs > 1``.

    Returns
    -------
    ExperimentOutcome

    Raises
    ------
    Whatever stopped a run, after writing ``out_dir/FAILED``.
    """
    from tqdm.auto import tqdm

    jobs = _check_jobs(jobs)
    out = pathlib.Path(out_dir)
    specs = config.runs()
    from tff_ser.rundir import check_writable
    # before any training: a read-only or full results folder fails now, not after hours
    check_writable(out, what="results folder", need_bytes=2_000_000 * len(specs))
    selected = select_runs(specs, only)
    # An older report must not look like this run's while it runs or after it fails.
    for stale in (TABLE_FILE, SUMMARY_FILE, FAILED_FILE, PARTIAL_FILE):
        (out / stale).unlink(missing_ok=True)
    command = command or f"run_experiment({type(config).__name__}(...), {str(out)!r})"
    checkpoint = (not config.quick) if checkpoint is None else checkpoint
    started = time.perf_counter()
    results: Dict[str, RunResult] = {}
    try:
        _check_models(config)
        corpus, fingerprint, features = _load_features(config, data_dir, progress)
        reused: List[str] = []
        missing: List[str] = []
        to_train: List[tuple] = []
        by_id = {spec.run_id: spec for spec in specs}
        keys = _run_keys(specs, by_id, fingerprint, features)
        for spec in specs:
            run_dir = out / RUNS_DIR / spec.run_id
            key = keys[spec.run_id]
            chosen = spec.run_id in selected
            result = _reusable(run_dir, key) if (reuse or not chosen) else None
            if result is not None:
                reused.append(spec.run_id)
                results[spec.run_id] = result
            elif not chosen:
                missing.append(spec.run_id)
            else:
                if not reuse:  # retrain from round 1, not from a killed run's checkpoint
                    shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
                to_train.append(_item(spec, by_id, features, out, keys))
        waves = _upstream_first(to_train, by_id, out, features, keys)
        trained = {item[0].run_id for wave in waves for item in wave}
        reused = [run_id for run_id in reused if run_id not in trained]  # a teacher retrained
        bar = tqdm(total=sum(map(len, waves)), desc=config.name, unit="run",
                   disable=not progress)
        for wave in waves:
            for run_id, result in _train_runs(wave, config.name, checkpoint=checkpoint,
                                              progress=progress, jobs=jobs):
                results[run_id] = result
                note = collapse_note(run_id, result)
                if note:
                    print(f"warning: {note}", file=sys.stderr, flush=True)
                bar.set_postfix_str(run_id)
                bar.update(1)
        bar.close()
        done = [spec for spec in specs if spec.run_id in results]
        speaker_sex = {c.speaker: c.sex for fs in features.values() for c in fs.clips}
        rows = [table_row(spec, results[spec.run_id], speaker_sex) for spec in done]
        results = {spec.run_id: results[spec.run_id] for spec in done}
        table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
        if missing:
            write_partial(out / PARTIAL_FILE, config=config, specs=specs, done=list(results),
                          missing=missing, command=command)
            return ExperimentOutcome(config=config, out_dir=out, table=table, results=results,
                                     figures={}, corpus=corpus,
                                     wall_seconds=time.perf_counter() - started,
                                     reused=reused, missing=missing)
        write_table(rows, out / TABLE_FILE)
        corpus = corpus + problems_note(features.values())
        figures = draw_figures(config, specs, results, table, out)
        wall = time.perf_counter() - started
        write_summary(out / SUMMARY_FILE, config=config, table=table, figures=figures,
                      corpus=corpus, command=command, wall_seconds=wall, specs=specs,
                      reused=reused, machines=machines_line(results))
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: not a failure; what is saved stays
        done = [spec.run_id for spec in specs if spec.run_id in results]
        write_partial(out / PARTIAL_FILE, config=config, specs=specs, done=done,
                      missing=[spec.run_id for spec in specs if spec.run_id not in results],
                      command=command,
                      interrupted=f"interrupted after {time.perf_counter() - started:.0f} s")
        raise
    except BaseException as exc:
        (out / FAILED_FILE).write_text(
            f"{config.name} failed after {time.perf_counter() - started:.0f} s\n"
            f"command: {command}\n\n{traceback.format_exc()}", encoding="utf-8")
        raise exc
    return ExperimentOutcome(config=config, out_dir=out, table=table, results=results,
                             figures=figures, corpus=corpus, wall_seconds=wall, reused=reused)


def _run_keys(specs, by_id, fingerprint, features) -> Dict[str, dict]:
    """Every run's key; a run built from a search or from branches carries their keys too."""
    keys: Dict[str, dict] = {}

    def key_of(spec: RunSpec) -> dict:
        if spec.run_id not in keys:
            upstream = {}
            for uid in spec.upstream():
                if uid not in by_id:
                    raise ValueError(f"run {spec.run_id!r} reads run {uid!r}, which is not a run "
                                     "of this experiment")
                if not (spec.teacher and uid == teacher_run_id(spec)):  # keys saved before
                    upstream[uid] = key_of(by_id[uid])
            keys[spec.run_id] = _run_key(spec, fingerprint,
                                         features[run_feature_kind(spec, by_id)], upstream)
        return keys[spec.run_id]

    for spec in specs:
        key_of(spec)
    return keys


def _item(spec: RunSpec, by_id, features, out: pathlib.Path, keys) -> tuple:
    """What training ``spec`` takes: (spec, its features, run folder, key, its branches'
    (spec, features) pairs or None)."""
    branches = [(by_id[uid], features[run_feature_kind(by_id[uid], by_id)])
                for uid in spec.branch_runs()] or None
    return (spec, features[run_feature_kind(spec, by_id)], out / RUNS_DIR / spec.run_id,
            keys[spec.run_id], branches)


def _upstream_first(to_train: List[tuple], by_id, out: pathlib.Path, features,
                    keys) -> List[List[tuple]]:
    """``to_train`` in waves: the runs others read (teachers, searches, branches) before them.

    A run read by another is trained first when it is queued itself or what it
    leaves is not on disk: a search's result (with a matching key), or the
    ``weights.npz`` of a teacher or a branch (a fresh clone has their results
    but not their weights, which are not committed): same settings and seed,
    so the same weights (``tests/integration/test_distillation.py``).
    """
    items = {item[0].run_id: item for item in to_train}

    def needed(uid: str) -> bool:
        run_dir = out / RUNS_DIR / uid
        if uid in items:
            return True
        if by_id[uid].search is not None:
            return _reusable(run_dir, keys[uid]) is None
        return not (run_dir / WEIGHTS_FILE).is_file()

    pending = list(items)
    while pending:
        spec = by_id[pending.pop()]
        for uid in spec.upstream():
            up = by_id[uid]
            if uid != spec.genotype_from and not up.keep_weights:
                raise ValueError(f"run {spec.run_id!r} reads the trained model of run {uid!r}, "
                                 "which does not keep its weights (keep_weights=True)")
            if uid not in items and needed(uid):
                items[uid] = _item(up, by_id, features, out, keys)
                pending.append(uid)
    depth: Dict[str, int] = {}

    def depth_of(uid: str, seen=()) -> int:
        if uid in seen:
            raise ValueError(f"runs {' -> '.join(seen + (uid,))} read each other in a circle")
        if uid not in depth:
            ups = [u for u in by_id[uid].upstream() if u in items]
            depth[uid] = 1 + max((depth_of(u, seen + (uid,)) for u in ups), default=-1)
        return depth[uid]

    waves: Dict[int, List[tuple]] = {}
    for uid in items:  # queued order within a wave, upstream runs in earlier waves
        waves.setdefault(depth_of(uid), []).append(items[uid])
    return [waves[d] for d in sorted(waves)]


def _check_jobs(jobs) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or \
            not (jobs >= 1 or jobs == -1):
        raise ValueError(f"jobs must be a positive number of processes or -1 (one per core), "
                         f"got {jobs!r}")
    return (os.cpu_count() or 1) if jobs == -1 else int(jobs)


def _train_and_save(spec: RunSpec, features, run_dir: pathlib.Path, key: dict, branches,
                    experiment: str, checkpoint: bool, progress: bool):
    result = train_run(spec, features, run_dir=run_dir, checkpoint=checkpoint,
                       progress=progress, branches=branches)
    result.extra["run_key"] = key
    result.extra["experiment"] = experiment
    if features.corpus_problems is not None:
        result.extra["corpus_problems"] = features.corpus_problems
    result.save(run_dir)
    return result


def _job_init(threads: int) -> None:
    from tff_ser.runtime import set_threads
    set_threads(threads)


def _job(spec, features, run_dir, key, branches, experiment, checkpoint) -> str:
    _train_and_save(spec, features, run_dir, key, branches, experiment, checkpoint,
                    progress=False)
    return spec.run_id


def _train_runs(to_train: Sequence[tuple], experiment: str, *, checkpoint: bool,
                progress: bool, jobs: int):
    """Train ``(spec, features, run_dir, key, branches)`` items, yielding ``(run_id, result)``
    as each one is saved: in this process one after another, or in ``jobs`` spawned processes."""
    if jobs <= 1 or len(to_train) <= 1:
        for spec, fs, run_dir, key, branches in to_train:
            check_stop_requested()
            yield spec.run_id, _train_and_save(spec, fs, run_dir, key, branches, experiment,
                                               checkpoint, progress)
        return
    import concurrent.futures
    import multiprocessing
    from tff_ser.results import RunResult
    jobs = min(jobs, len(to_train))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    from tff_ser.features.pipeline import warm_librosa_cache
    warm_librosa_cache()  # workers that extract features must not compile librosa's numba at once
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
        initializer=_job_init, initargs=(threads,))
    try:
        futures = {pool.submit(_job, spec, fs, run_dir, key, branches, experiment,
                               checkpoint): run_dir
                   for spec, fs, run_dir, key, branches in to_train}
        for future in concurrent.futures.as_completed(futures):
            run_id = future.result()  # a run that failed raises here, with its traceback
            yield run_id, RunResult.load(futures[future])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def select_runs(specs: Sequence[RunSpec], only: Optional[Sequence[str]]) -> set:
    """Run ids of ``specs`` matched by any of the shell-style patterns ``only`` (all if None).

    Raises
    ------
    ValueError
        If a pattern matches no run (a typo would otherwise train nothing).
    """
    import fnmatch
    ids = [s.run_id for s in specs]
    if only is None:
        return set(ids)
    if isinstance(only, str):
        only = [only]
    chosen = set()
    for pattern in only:
        hits = fnmatch.filter(ids, pattern)
        if not hits:
            raise ValueError(f"--only {pattern!r} matches no run of this experiment; its runs "
                             f"are: {', '.join(ids)}")
        chosen.update(hits)
    return chosen


