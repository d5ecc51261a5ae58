"""A fast engine's state between rounds, and the plan of one round (clients, batches, steps).

Shared by the batched and plain-TF engines (:mod:`tff_ser.engines.batched`,
:mod:`tff_ser.engines.plain_tf`); TFF's process keeps its own state.
"""
from __future__ import annotations

import dataclasses
import io
import math
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tff_ser.fedconfig import FederatedConfig, client_order, sample_clients
from tff_ser.task import Task


# --------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------

@dataclasses.dataclass
class EngineState:
    """Everything a run needs to continue after ``round_num``.

    Plain NumPy arrays and ints, so it pickles, and :meth:`save` /
    :meth:`load` keep it in one ``.npz`` file.  Learning rates are not part
    of the state: they come from the config of each :meth:`BatchedFedAvg.run_rounds`
    call, as with ``set_learning_rates`` on a TFF state.

    Parameters
    ----------
    round_num : int
        Last completed round (0 before training).
    trainable, non_trainable : list of ndarray
        Server model weights in Keras' ``trainable_weights`` order (the order
        of TFF's ``ModelWeights``).
    server_step : int
        Server optimizer steps taken (Adam's ``t``).
    server_accumulator, server_preconditioner : list of ndarray
        Server Adam's first and second moment per trainable weight; empty
        for the SGD server.
    """

    round_num: int
    trainable: List[np.ndarray]
    non_trainable: List[np.ndarray]
    server_step: int
    server_accumulator: List[np.ndarray]
    server_preconditioner: List[np.ndarray]
    #: The aggregator's adaptive norms (``tff_ser.engines.aggregators``); empty for the plain mean.
    aggregator_state: List[np.ndarray] = dataclasses.field(default_factory=list)

    @property
    def model_weights(self) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """``(trainable, non_trainable)``, what :func:`tff_ser.evaluation.evaluate_weights` takes."""
        return self.trainable, self.non_trainable

    def save(self, path: str) -> None:
        """Write the state to ``path`` (an ``.npz`` file), atomically."""
        arrays = {"round_num": np.int64(self.round_num), "server_step": np.int64(self.server_step)}
        for group in ("trainable", "non_trainable", "server_accumulator", "server_preconditioner",
                      "aggregator_state"):
            for i, value in enumerate(getattr(self, group)):
                arrays[f"{group}/{i}"] = np.asarray(value)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        from tff_ser.rundir import atomic_write_bytes
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str) -> "EngineState":
        """Read a state written by :meth:`save` (:class:`~tff_ser.errors.CorruptFile` if unreadable)."""
        import zipfile
        from tff_ser.errors import CorruptFile
        try:
            return cls._load(path)
        except (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            folder = os.path.dirname(os.path.abspath(path))
            raise CorruptFile(
                f"the checkpoint state {path} is unreadable ({type(exc).__name__}: {exc}). "
                f"Delete the folder {folder} to start the run over (the rounds saved there are "
                "lost), or restore the file from a backup and run the same command again "
                "to resume") from exc

    @classmethod
    def _load(cls, path: str) -> "EngineState":
        with np.load(path) as data:
            def group(name):
                keys = sorted((k for k in data.files if k.startswith(name + "/")),
                              key=lambda k: int(k.split("/")[1]))
                return [data[k] for k in keys]
            return cls(round_num=int(data["round_num"]), trainable=group("trainable"),
                       non_trainable=group("non_trainable"), server_step=int(data["server_step"]),
                       server_accumulator=group("server_accumulator"),
                       server_preconditioner=group("server_preconditioner"),
                       aggregator_state=group("aggregator_state"))


def check_server_slots(spec, state: EngineState) -> None:
    """Refuse a saved state whose server optimizer slots do not belong to ``spec``."""
    for name, wanted in (("accumulator", spec.has_accumulator),
                         ("preconditioner", spec.has_preconditioner)):
        have = bool(getattr(state, f"server_{name}"))
        if have != wanted:
            raise ValueError(
                f"the saved state {'holds' if have else 'lacks'} a server {name}, but the "
                f"server optimizer {spec.kind!r} {'has' if wanted else 'has no'} such slot; "
                "it was saved by a run with another server optimizer (start it afresh)")



# --------------------------------------------------------------------------
# one round's clients, clip order and batches, as index arrays
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RoundPlan:
    """What every sampled client trains on in one round.

    ``clip_index[s, k, b]`` is the row of ``task.x`` that client ``s`` sees
    at position ``b`` of its local step ``k``; ``clip_mask`` is 1 for real
    clips and 0 for padding (partial last batches, clients with fewer steps).
    """

    clients: Tuple[str, ...]
    clip_index: np.ndarray   # (clients, max_steps, batch_size) int32
    clip_mask: np.ndarray    # (clients, max_steps, batch_size) float32
    num_examples: np.ndarray  # (clients,) float32: clips seen over all local epochs
    last_step: np.ndarray    # (clients,) int32: index of each client's last local step
    num_steps: int           # local steps of the busiest sampled client


def max_local_steps(client_sizes: Sequence[int], local_epochs: int, batch_size: int) -> int:
    """Local steps of the largest client: ``ceil(NLE * clips / BS)``."""
    return max(math.ceil(local_epochs * int(n) / batch_size) for n in client_sizes)


def plan_round(task: Task, config: FederatedConfig, round_num: int, *,
               max_steps: Optional[int] = None) -> RoundPlan:
    """The batches of round ``round_num``, exactly as :mod:`tff_ser.federated` builds them.

    Parameters
    ----------
    task : Task
    config : FederatedConfig
        Uses ``client_fraction``, ``local_epochs``, ``batch_size`` and ``seed``.
    round_num : int
        1-based round.
    max_steps : int, optional
        Pad the step axis to this length (default: the largest training
        client's step count), so every round of a run has the same shapes
        and the round function is compiled once.
    """
    client_ids = sorted(task.train_clients)
    position = {cid: i for i, cid in enumerate(client_ids)}
    bs = config.batch_size
    if max_steps is None:
        max_steps = max_local_steps([len(task.train_clients[c]) for c in client_ids],
                                    config.local_epochs, bs)
    sampled = sample_clients(client_ids, config.client_fraction, round_num, config.seed)
    clip_index = np.zeros((len(sampled), max_steps * bs), dtype=np.int32)
    clip_mask = np.zeros((len(sampled), max_steps * bs), dtype=np.float32)
    num_examples = np.zeros(len(sampled), dtype=np.float32)
    for s, cid in enumerate(sampled):
        clips = np.asarray(task.train_clients[cid])
        order = client_order(len(clips), config.local_epochs, config.seed, round_num, position[cid])
        if len(order) > max_steps * bs:
            raise ValueError(f"client {cid!r} needs {math.ceil(len(order) / bs)} local steps but "
                             f"max_steps={max_steps}; leave max_steps unset")
        clip_index[s, :len(order)] = clips[order]
        clip_mask[s, :len(order)] = 1.0
        num_examples[s] = len(order)
    shape = (len(sampled), max_steps, bs)
    steps = np.ceil(num_examples / bs).astype(np.int32)
    return RoundPlan(clients=tuple(sampled), clip_index=clip_index.reshape(shape),
                     clip_mask=clip_mask.reshape(shape), num_examples=num_examples,
                     last_step=steps - 1, num_steps=int(steps.max()))


def dropout_seed(seed: int, round_num: int) -> np.ndarray:
    """Base seed of a round's dropout masks (steps and layers are folded in on the graph)."""
    state = np.random.SeedSequence([int(seed), int(round_num), 0xD50]).generate_state(2)
    return state.astype(np.int64)
