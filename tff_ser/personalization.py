"""Each speaker's own model and number: local fine-tuning after FedAvg, and new-speaker enrollment.

Paper 001's premise is a model that adapts to its user, and its future work a
user who corrects the classifier's labels.  Two evaluations of a trained
global model (its ``(trainable, non_trainable)`` weights, e.g. ``result.weights``):

* :func:`personal_split` and :func:`finetune_clients` -- **local fine-tuning**.
  Each training speaker's clips are split into a personal-train and a
  personal-test part (stratified by emotion where the counts allow, seeded)
  *before* FedAvg, which then trains on the personal-train parts only; after
  it, each client fine-tunes the global model on its personal-train clips
  (``steps`` passes, the head or all layers) and is scored on its
  personal-test clips, beside the global model on the same clips.
* :func:`personalized_task` -- **FedPer, FedRep, FedBN and Ditto** (personalization within
  FedAvg, :mod:`tff_ser.engines.personal`): the same personal split, and
  ``train_federated(task, config, engine="tf")`` trains the global model while
  every client keeps its own head (FedPer) or model (Ditto);
  :func:`personal_table` reads each client's own model and the global one on
  its personal-test clips from the result.
* :func:`enrollment_curve` -- **new-speaker enrollment**: a held-out speaker
  labels ``k`` of its clips (k in 0, 5, 10, 20: chosen stratified by emotion,
  seeded), the global model adapts on them, and is scored on the speaker's
  other clips -- the same scoring clips for every k (those left after the
  largest k), so the curve compares like with like.  An enrollment clip is
  never scored (``tests/integration/test_personalization.py``).

Adaptation: the global model with a fresh Keras Adam of the client's own
(``lr``; one compiled model is reset for each client, with the numbers of a
fresh copy), ``steps`` epochs over its adaptation clips in minibatches of
``batch_size``; ``layers="head"`` trains only the last layer (the softmax
Dense), ``"all"`` every layer.  Dropout stays in training mode during the
steps, as in training.  Seeds: Keras' global seed is set from ``seed`` and
the speaker, so the same call gives the same numbers.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from tff_ser.task import Task, split_client_clips, stratified_first


def personal_split(task: Task, *, test_fraction: float = 0.25,
                   seed: int = 0) -> Tuple[Task, Dict[str, np.ndarray]]:
    """``task`` whose training clients keep only their personal-train clips, and the personal-test
    clips of each (stratified by emotion where the counts allow, seeded:
    :func:`tff_ser.task.split_client_clips`).

    Train FedAvg on the returned task; :func:`finetune_clients` scores on the held-back clips.
    """
    train, test = split_client_clips(task, test_fraction, seed=seed, purpose="personal test")
    info = {**task.info, "personal_split": {"test_fraction": test_fraction, "seed": seed}}
    return dataclasses.replace(task, train_clients=train, info=info), test


class _Adapter:
    """One model and one client Adam, compiled once, that adapts the global model again and again.

    Building, compiling and fitting a fresh Keras model for every client traces
    a new train function each time, and tracing was ~70 % of a personalization
    evaluation (73 clients and 72 enrollments: minutes for paper 000's MLP).
    Here each :meth:`adapt` restores the model's weights and the optimizer's
    variables (slots, step count) to their starting values instead, so the
    traced function is reused.  For the package's models the numbers are those
    of a fresh model and a fresh optimizer per client (bit for bit, both
    stacks): their dropout draws its masks from the layer's input
    (:class:`tff_ser.layers.ReproducibleDropout`), not from a generator that
    advances between calls, and the shuffle is seeded per call.  A user's model
    with Keras' own ``Dropout`` keeps drawing from one generator across
    clients: the same seed still gives the same table, but a client's masks
    depend on the clients adapted before it.
    """

    def __init__(self, task: Task, *, lr: float, layers: str):
        import keras
        if layers not in ("head", "all"):
            raise ValueError(f"layers must be 'head' or 'all', got {layers!r}")
        self.task = task
        self.model = task.model_def.build(task.input_shape, task.num_classes, seed=0)
        # The order of ``(trainable, non_trainable)`` weights: the model's before any layer is frozen.
        self._variables = list(self.model.trainable_weights) + list(self.model.non_trainable_weights)
        if layers == "head":
            for layer in self.model.layers[:-1]:
                layer.trainable = False
        optimizer = keras.optimizers.Adam(lr)
        self.model.compile(optimizer=optimizer, loss=task.model_def.make_loss())
        optimizer.build(self.model.trainable_variables)
        self._optimizer_start = [(v, np.array(v.numpy())) for v in optimizer.variables]

    def adapt(self, weights, rows: np.ndarray, *, steps: int, batch_size: int, seed: int,
              shuffle: bool = True):
        """The model, set to ``weights`` and trained ``steps`` epochs on ``rows`` (none: as given)."""
        import keras
        trainable, non_trainable = weights
        for var, value in zip(self._variables, list(trainable) + list(non_trainable)):
            var.assign(value)
        if len(rows) == 0 or steps == 0:
            return self.model
        for var, value in self._optimizer_start:
            var.assign(value)
        keras.utils.set_random_seed(seed)
        self.model.fit(self.task.x[rows], self.task.y[rows], batch_size=min(batch_size, len(rows)),
                       epochs=steps, shuffle=shuffle, verbose=0)
        return self.model


def _scores(task: Task, model, rows: np.ndarray) -> dict:
    from tff_ser.metrics import classification_metrics
    pred = np.argmax(np.asarray(model(task.x[rows], training=False)), axis=1)
    m = classification_metrics(task.y[rows], pred, num_classes=task.num_classes)
    return {"accuracy": m["accuracy"], "uar": m["balanced_accuracy"], "n_scored": int(len(rows))}


def finetune_clients(task: Task, weights, personal_test: Dict[str, np.ndarray], *,
                     steps: int = 5, lr: float = 1e-3, batch_size: int = 16,
                     layers: str = "all", seed: int = 0, shuffle: bool = True) -> pd.DataFrame:
    """Each training client: the global model and its fine-tuned copy on its personal-test clips.

    ``task`` and ``personal_test`` from :func:`personal_split`; ``weights`` the
    global model trained on that task.  One row per client: ``global_*`` and
    ``personal_*`` accuracy and UAR, and the clips each was adapted / scored on.
    ``shuffle=False`` takes the personal-train clips in index order each epoch
    (as :func:`tff_ser.engines.tff_personalization.tff_finetune_clients`, TFF's
    personalization evaluation of the same fine-tuning, does).
    """
    adapter = _Adapter(task, lr=lr, layers=layers)
    rows = []
    for i, cid in enumerate(sorted(personal_test)):
        test_rows = np.asarray(personal_test[cid])
        train_rows = np.asarray(task.train_clients[cid])
        if set(test_rows) & set(train_rows):
            raise ValueError(f"client {cid!r}: personal-test clips are among its training clips")
        g = _scores(task, adapter.adapt(weights, train_rows, steps=0, batch_size=batch_size,
                                        seed=seed), test_rows)
        p = _scores(task, adapter.adapt(weights, train_rows, steps=steps, batch_size=batch_size,
                                        seed=seed * 1000 + i, shuffle=shuffle), test_rows)
        rows.append({"client": cid, "adapted_on": int(len(train_rows)),
                     "n_scored": g["n_scored"], "global_accuracy": g["accuracy"],
                     "global_uar": g["uar"], "personal_accuracy": p["accuracy"],
                     "personal_uar": p["uar"]})
    return pd.DataFrame(rows)


def enrollment_curve(task: Task, weights, *, ks: Sequence[int] = (0, 5, 10, 20), steps: int = 5,
                     lr: float = 1e-3, batch_size: int = 16, layers: str = "all",
                     seed: int = 0, speakers: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Held-out speakers enrolled with k labelled clips each: one row per (speaker, k).

    The enrollment clips of a speaker are the first ``max(ks)`` of a seeded,
    emotion-stratified order (``k`` takes the first k of them); every k is
    scored on the same clips, those after ``max(ks)``.  ``k = 0`` is the global
    model.  Columns: speaker, k, accuracy, uar, n_scored, enrolled (the row
    indices adapted on, for checking).
    """
    ks = sorted(set(int(k) for k in ks))
    if ks[0] < 0:
        raise ValueError(f"k must be >= 0; got {ks}")
    adapter = _Adapter(task, lr=lr, layers=layers)
    rows = []
    for i, spk in enumerate(sorted(speakers or task.val_clients)):
        idx = np.asarray(task.val_clients[spk])
        if len(idx) <= ks[-1]:
            raise ValueError(f"held-out speaker {spk!r} has {len(idx)} clips: enrolling "
                             f"{ks[-1]} leaves none to score; use smaller ks")
        order = stratified_first(idx, task.y, ks[-1], seed=[seed, i, 2])
        scored = np.setdiff1d(idx, order)
        for k in ks:
            enrolled = order[:k]
            model = adapter.adapt(weights, enrolled, steps=steps if k else 0,
                                  batch_size=batch_size, seed=seed * 1000 + i)
            rows.append({"speaker": spk, "k": k, **_scores(task, model, scored),
                         "enrolled": [int(r) for r in enrolled]})
    return pd.DataFrame(rows)


def personalized_task(task: Task, method: str = "fedper", *, test_fraction: float = 0.25,
                      seed: int = 0, personal_layers: int = 1, ditto_lambda: float = 0.1):
    """``task`` prepared for FedPer, FedRep, FedBN or Ditto: personal split, and the method's knobs.

    Train it with ``train_federated(ptask, config, engine="tf")`` (the engine
    that keeps per-client state); read the per-client table with
    :func:`personal_table`.  See :mod:`tff_ser.engines.personal`.
    """
    from tff_ser.engines.personal import PersonalizedTask, PersonalSpec
    spec = PersonalSpec(method, personal_layers=personal_layers, ditto_lambda=ditto_lambda)
    train_task, personal_test = personal_split(task, test_fraction=test_fraction, seed=seed)
    fields = {f.name: getattr(train_task, f.name) for f in dataclasses.fields(Task)}
    fields["info"] = {**train_task.info, "personalization": spec.to_dict()}
    return PersonalizedTask(**fields, personal=spec, personal_test=personal_test)


def personal_table(result) -> pd.DataFrame:
    """One row per client of a FedPer / FedRep / FedBN / Ditto run: its own model and the global one on its
    personal-test clips (``global_*`` / ``personal_*`` accuracy and UAR)."""
    personalized = result.final_metrics.get("personalized")
    if personalized is None:
        raise ValueError("this result is not of a personalized run (personalized_task + the tf "
                         "engine); for fine-tuning after FedAvg use finetune_clients")
    return pd.DataFrame(personalized["clients"])


#: What a run can do for each training client's own number (:class:`PersonalPlan`).
PLAN_METHODS = ("finetune", "fedper", "fedrep", "fedbn", "ditto")


@dataclasses.dataclass(frozen=True)
class PersonalPlan:
    """One run's personalization, as an experiment declares it (``RunSpec.personal``).

    Every method first keeps ``test_fraction`` of each training client's clips
    as its personal test (:func:`personal_split`, seeded with the run's seed, so
    the methods of one seed score the same clips) and then:

    * ``"finetune"``: plain FedAvg on the personal-train parts, then each client
      fine-tunes the global model (``steps`` epochs, ``layers``, Adam ``lr``,
      ``batch_size``) -- :func:`finetune_clients`;
    * ``"fedper"`` / ``"fedrep"`` / ``"fedbn"`` / ``"ditto"``: personalization within FedAvg
      (:mod:`tff_ser.engines.personal`; ``personal_layers``, ``ditto_lambda``).

    Every client's row has the global model's and its own model's accuracy and
    UAR on its personal-test clips.  With ``enroll_ks``, the held-out speakers
    are also enrolled (:func:`enrollment_curve`, same ``steps`` / ``layers``)
    from the global model -- not for FedPer, FedRep and FedBN, whose global model keeps an
    untrained part (the head; batch normalization).
    """

    method: str = "finetune"
    test_fraction: float = 0.25
    steps: int = 5
    layers: str = "all"
    lr: float = 1e-3
    batch_size: int = 16
    personal_layers: int = 1
    ditto_lambda: float = 0.1
    enroll_ks: Tuple[int, ...] = (0, 5, 10, 20)

    def __post_init__(self):
        if self.method not in PLAN_METHODS:
            raise ValueError(f"personalization method must be one of {PLAN_METHODS}, got "
                             f"{self.method!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1); got {self.test_fraction}")
        if self.layers not in ("head", "all"):
            raise ValueError(f"layers must be 'head' or 'all', got {self.layers!r}")
        if int(self.steps) < 0 or any(int(k) < 0 for k in self.enroll_ks):
            raise ValueError(f"steps and enroll_ks must be >= 0; got {self.steps}, "
                             f"{self.enroll_ks}")
        object.__setattr__(self, "enroll_ks", tuple(int(k) for k in self.enroll_ks))
        if self.method != "finetune":  # the method's own knobs are checked where they are kept
            from tff_ser.engines.personal_spec import PersonalSpec
            PersonalSpec(self.method, personal_layers=self.personal_layers,
                         ditto_lambda=self.ditto_lambda)

    def prepare(self, task: Task, seed: int) -> Tuple[Task, Dict[str, np.ndarray]]:
        """The task FedAvg trains (personal-train clips only) and each client's personal-test rows."""
        if self.method == "finetune":
            return personal_split(task, test_fraction=self.test_fraction, seed=seed)
        ptask = personalized_task(task, self.method, test_fraction=self.test_fraction,
                                  seed=seed, personal_layers=self.personal_layers,
                                  ditto_lambda=self.ditto_lambda)
        return ptask, ptask.personal_test

    def evaluate(self, task: Task, personal_test: Dict[str, np.ndarray], result,
                 seed: int) -> dict:
        """``result.final_metrics["personalized"]`` of a run trained on :meth:`prepare`'s task.

        ``result.weights`` is the global model.  Keys: ``plan``, ``clients``
        (one row per training client), ``enrollment`` (one row per held-out
        speaker and k; empty for FedPer, FedRep, FedBN or without ``enroll_ks``).
        """
        if self.method == "finetune":
            clients = finetune_clients(task, result.weights, personal_test, steps=self.steps,
                                       lr=self.lr, batch_size=self.batch_size,
                                       layers=self.layers, seed=seed).to_dict("records")
        else:
            clients = personal_table(result).to_dict("records")
        enrollment = []
        if self.enroll_ks and self.method not in ("fedper", "fedrep", "fedbn"):
            curve = enrollment_curve(task, result.weights, ks=self.enroll_ks, steps=self.steps,
                                     lr=self.lr, batch_size=self.batch_size, layers=self.layers,
                                     seed=seed)
            enrollment = curve.drop(columns="enrolled").to_dict("records")
        return {"plan": dataclasses.asdict(self), "clients": clients, "enrollment": enrollment}


def personal_summary(personalized: Optional[dict]) -> dict:
    """The per-client numbers of one run in a few columns (``results.csv``).

    ``client_global_uar`` / ``client_personal_uar``: mean over the training
    clients of the global and of each client's own model's UAR on its
    personal-test clips; ``client_personal_uar_p10``: their worst decile (own
    model); ``client_personal_better``: the share of clients whose own model
    scores higher than the global one; ``enroll_uar``: the held-out speakers'
    mean UAR per enrollment k, as ``"0:0.612 5:0.640 ..."``.
    """
    keys = ("client_global_uar", "client_personal_uar", "client_personal_uar_p10",
            "client_personal_better", "enroll_uar")
    if not personalized or not personalized.get("clients"):
        return dict.fromkeys(keys)
    clients = pd.DataFrame(personalized["clients"])
    own, glob = clients["personal_uar"].astype(float), clients["global_uar"].astype(float)
    enroll = pd.DataFrame(personalized.get("enrollment") or [])
    curve = "" if enroll.empty else " ".join(
        f"{int(k)}:{uar:.4f}" for k, uar in enroll.groupby("k")["uar"].mean().items())
    return {"client_global_uar": float(glob.mean()), "client_personal_uar": float(own.mean()),
            "client_personal_uar_p10": float(np.percentile(own, 10)),
            "client_personal_better": float(np.mean(own > glob)), "enroll_uar": curve or None}


def parse_enroll_uar(text) -> Dict[int, float]:
    """``{k: uar}`` of a ``results.csv`` ``enroll_uar`` cell (:func:`personal_summary`)."""
    if not isinstance(text, str) or not text.strip():
        return {}
    return {int(k): float(v) for k, v in (pair.split(":") for pair in text.split())}
