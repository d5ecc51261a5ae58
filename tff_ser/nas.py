"""Architecture search across clients: DARTS and FedNAS over a task's training speakers.

Paper 003 (EmotionNAS) searches its spectrogram branch with DARTS; federated,
the same search runs as FedNAS (:mod:`tff_ser.engines.fednas`).  A search is
an ordinary federated run of a search network
(:func:`tff_ser.darts.darts_search_network`, model ``"darts_search"``) on a
:class:`~tff_ser.engines.fednas.SearchTask`:

* :func:`search_task` -- FedNAS: each training speaker is a client, and
  splits its own clips in two (stratified by emotion, seeded,
  :func:`tff_ser.task.split_client_clips`): one part trains the weights, the
  other the architecture;
* :func:`pooled_search_task` -- centralized DARTS: one client holding every
  training speaker's clips, split the same way.

Held-out speakers take part in neither: the search's architecture is chosen
on the training speakers' validation clips, and reported on held-out
speakers it never saw.  ``train_federated(search_task(...), config,
engine="tf")`` runs it (resumable like every run); :func:`searched_genotype`
reads the derived cell from its result, :func:`architecture_weights` the
weights it was derived from, :func:`tff_ser.darts.derived_network` builds it.

Examples
--------
>>> from tff_ser.engines.search_spec import SearchSpec          # doctest: +SKIP
>>> task = search_task(make_task(features, "darts_search", speakers), SearchSpec())
>>> config = FederatedConfig(rounds=10, client_optimizer="sgdm", client_lr=0.025,
...                          server_optimizer="sgd", server_lr=1.0, local_epochs=1)
>>> result = train_federated(task, config, engine="tf")
>>> searched_genotype(result).save("genotype.json")
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import pandas as pd

from tff_ser.darts import Genotype
from tff_ser.engines.search_spec import SearchSpec
from tff_ser.task import Task, split_client_clips

#: The client id of :func:`pooled_search_task`'s single client.
POOLED_CLIENT = "pooled"


def search_task(task: Task, spec: Optional[SearchSpec] = None, *, seed: int = 0):
    """``task`` as a FedNAS search: every training client keeps ``1 - val_fraction`` of its
    clips for the weights and holds back the rest for the architecture."""
    from tff_ser.engines.fednas import SearchTask
    spec = spec or SearchSpec()
    train, val = split_client_clips(task, spec.val_fraction, seed=seed,
                                    purpose="architecture validation")
    info = {**task.info, "search": {"split": "per client", "seed": seed, **spec.to_dict()}}
    return SearchTask(model=task.model, x=task.x, y=task.y, train_clients=train,
                      val_clients=task.val_clients, class_names=task.class_names, info=info,
                      normalizer=task.normalizer, search=spec, search_val=val)


def pooled_search_task(task: Task, spec: Optional[SearchSpec] = None, *, seed: int = 0):
    """``task`` as a centralized DARTS search: one client with all training clips, split as
    :func:`search_task` splits a client's (so the two searches see the same clips)."""
    from tff_ser.engines.fednas import SearchTask
    spec = spec or SearchSpec()
    train, val = split_client_clips(task, spec.val_fraction, seed=seed,
                                    purpose="architecture validation")
    info = {**task.info, "search": {"split": "pooled", "seed": seed, **spec.to_dict()}}
    return SearchTask(model=task.model, x=task.x, y=task.y,
                      train_clients={POOLED_CLIENT: np.sort(np.concatenate(list(train.values())))},
                      val_clients=task.val_clients, class_names=task.class_names, info=info,
                      normalizer=task.normalizer, search=spec,
                      search_val={POOLED_CLIENT: np.sort(np.concatenate(list(val.values())))})


def searched_genotype(result) -> Genotype:
    """The cell a finished search derived (``result.final_metrics["search"]``)."""
    found = result.final_metrics.get("search")
    if not found:
        raise ValueError("this result is no architecture search (its final metrics hold no "
                         "'search'); run train_federated on a tff_ser.nas.search_task")
    return Genotype.from_dict(found["genotype"])


def architecture_weights(result) -> Dict[str, pd.DataFrame]:
    """A finished search's ``softmax(theta)``, one table per cell type.

    Returns ``{"normal": frame, "reduce": frame}``: rows the cell's edges
    (:func:`tff_ser.darts.edge_labels`), columns the candidate operations
    (:data:`tff_ser.darts.PRIMITIVES`), each row summing to 1.  The derived
    cell keeps each node's two strongest edges, each with its strongest
    operation other than ``none`` (``searched_genotype(result).picks(kind)``).
    """
    from tff_ser.darts import PRIMITIVES, edge_labels, edge_weights
    genotype = searched_genotype(result)
    found = result.final_metrics["search"]
    return {kind: pd.DataFrame(edge_weights(found[f"alpha_{kind}"]),
                               index=list(edge_labels(genotype.nodes)), columns=list(PRIMITIVES))
            for kind in ("normal", "reduce")}
