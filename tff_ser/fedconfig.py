"""What one federated run is, independent of who computes it.

:class:`FederatedConfig` holds the knobs of FedAvg in the papers' words
(rounds = NGE, local_epochs = NLE, batch_size = BS, client_fraction = CD,
client and server learning rates and optimizers, seed), and the two
functions here fix which clients train in a round (:func:`sample_clients`)
and in which order each walks its clips (:func:`client_order`).  Every
engine under :mod:`tff_ser.engines` reads them from here, so all engines
train the very same rounds; this module imports no engine and no
TensorFlow.
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence

import numpy as np

#: Optimizers the processes can be built with (client and server independently).
OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass(frozen=True)
class FederatedConfig:
    """Knobs of one federated run, named as in the papers.

    Parameters
    ----------
    rounds : int
        NGE, number of global epochs (communication rounds).
    local_epochs : int
        NLE, passes over its own clips each sampled client makes per round.
    batch_size : int
        BS, client mini-batch size.
    client_fraction : float
        CD, fraction of the training clients sampled each round (at least one).
    client_lr : float
        Learning rate of the client optimizer (paper 000's LR, "set by the
        server for the clients").
    server_lr : float
        Learning rate of the server optimizer applied to the averaged update.
        The default 0.01 is this class's (and ``tff-ser train``'s); the
        paper-001 experiments declare 0.001 in their own ``fl``
        (:data:`tff_ser.experiments.configs.EXPERIMENT_FL`), paper 000's
        per-speaker experiment 0.01.
    client_optimizer, server_optimizer : {"adam", "sgd"}
        Paper 001 uses Adam on both sides; paper 004 plain SGD on the clients
        (eta = 0.01) with FedAvg's server step (SGD, lr 1.0).
    seed : int
        Seeds initial weights, client sampling and client shuffling.
    eval_every : int
        Evaluate on the validation clients every this many rounds (0: only at
        the end).  Evaluation time is not part of the training time.
    """

    rounds: int = 20
    local_epochs: int = 1
    batch_size: int = 20
    client_fraction: float = 1.0
    client_lr: float = 0.001
    server_lr: float = 0.01
    client_optimizer: str = "adam"
    server_optimizer: str = "adam"
    seed: int = 0
    eval_every: int = 0

    def __post_init__(self):
        if self.rounds < 1:
            raise ValueError(f"rounds (NGE) must be >= 1, got {self.rounds}")
        if self.local_epochs < 1:
            raise ValueError(f"local_epochs (NLE) must be >= 1, got {self.local_epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size (BS) must be >= 1, got {self.batch_size}")
        if not 0.0 < self.client_fraction <= 1.0:
            raise ValueError(f"client_fraction (CD) must be in (0, 1], got {self.client_fraction}")
        for side in ("client_optimizer", "server_optimizer"):
            if getattr(self, side) not in OPTIMIZERS:
                raise ValueError(f"{side} must be one of {OPTIMIZERS}, got {getattr(self, side)!r}")
        for side in ("client_lr", "server_lr"):
            if not getattr(self, side) > 0:
                raise ValueError(f"{side} must be > 0, got {getattr(self, side)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------
# client sampling and clip order
# --------------------------------------------------------------------------

def sample_clients(client_ids: Sequence[str], client_fraction: float, round_num: int,
                   seed: int) -> List[str]:
    """The clients that train in ``round_num`` (CD of them, at least one).

    Depends only on (seed, round), never on earlier rounds, so a run resumed
    at round r samples exactly what an uninterrupted run samples there.
    """
    ids = sorted(client_ids)
    m = max(1, int(round(client_fraction * len(ids))))
    if m >= len(ids):
        return ids
    rng = np.random.default_rng([seed, round_num])
    return sorted(rng.choice(ids, size=m, replace=False).tolist())


def client_order(n: int, local_epochs: int, seed: int, round_num: int, client_index: int) -> np.ndarray:
    """Clip order a client trains in during one round: one fresh shuffle per local epoch."""
    rng = np.random.default_rng([seed, round_num, client_index, 7])
    return np.concatenate([rng.permutation(n) for _ in range(local_epochs)])


def round_clip_rows(train_clients, config: "FederatedConfig", round_num: int):
    """``[(client id, rows of task.x in training order)]`` for one round.

    The sampled clients in sorted order; each client's rows are its clips in
    :func:`client_order` (NLE shuffles, concatenated).  Cut into batches of
    BS, the last one partial, they are exactly the batches TFF's process is
    given (``tf.data.Dataset.from_tensor_slices(...).batch(BS)``).
    """
    ids = sorted(train_clients)
    position = {cid: i for i, cid in enumerate(ids)}
    out = []
    for cid in sample_clients(ids, config.client_fraction, round_num, config.seed):
        idx = np.asarray(train_clients[cid])
        order = client_order(len(idx), config.local_epochs, config.seed, round_num, position[cid])
        out.append((cid, idx[order]))
    return out


def initial_model_weights(model_name: str, input_shape: tuple, num_classes: int, seed: int):
    """Trainable and non-trainable weights of the seeded initial model (every engine starts here)."""
    from tff_ser.models import build_model
    m = build_model(model_name, input_shape=tuple(input_shape), num_classes=num_classes, seed=seed)
    return ([w.numpy() for w in m.trainable_weights],
            [w.numpy() for w in m.non_trainable_weights])
