"""Paper 000's hyperparameter grid, equations (2)-(6).

The feasibility set is the 5-dimensional grid

* NGE (``rounds``) in {50, 100, 150, 200}
* NLE (``local_epochs``) in {1, 3, 5}
* LR (``client_lr``) in {0.1, 0.01, 0.001} -- "set by the server" for the clients
* BS (``batch_size``) in {8, 16, 32, 64}
* CD (``client_fraction``) in {0.10, 0.50, 0.75, 1.0}

4 x 3 x 3 x 4 x 4 = 576 points.  Points are plain dicts keyed by the
:class:`~tff_ser.federated.FederatedConfig` field names; tables show the
paper's abbreviations (:data:`ABBREVIATIONS`).

Every variable except NGE changes the training itself; NGE only says where
to stop.  Client sampling, clip order and dropout masks depend on
(seed, round) alone, so the NGE = 50 run is exactly the first 50 rounds of
the NGE = 200 run with the same (NLE, LR, BS, CD, seed): the grid holds
576 / 4 = 144 *trajectories* (:func:`trajectory_key`).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Dict, List, Mapping, Tuple

#: Grid variables in the paper's order (FederatedConfig field names).
VARIABLES = ("rounds", "local_epochs", "client_lr", "batch_size", "client_fraction")

#: The paper's name of each variable, used as table headers.
ABBREVIATIONS = {"rounds": "NGE", "local_epochs": "NLE", "client_lr": "LR",
                 "batch_size": "BS", "client_fraction": "CD"}

#: Variables that define a trajectory (everything but NGE).
TRAJECTORY_VARIABLES = ("local_epochs", "client_lr", "batch_size", "client_fraction")


@dataclasses.dataclass(frozen=True)
class GridSpace:
    """A grid over :data:`VARIABLES`, each with its levels, and the task it tunes.

    The HPO is generic: any registered model, any partition of the training
    speakers into clients, any levels.  Paper 000's grid
    (:data:`PAPER_000_GRID`) is one configuration: the MLP, one client per
    speaker.

    Parameters
    ----------
    name : str
        Label of the grid (``"paper000"``, ``"quick"``).
    levels : mapping
        Variable name -> sequence of values; must name exactly :data:`VARIABLES`.
    size : {"full", "small"}
        Corpus size the grid is meant for (the quick grid runs on the
        12-speaker test corpus).
    model : str
        A registered model (:data:`tff_ser.models.MODELS`) the grid trains.
    partition : str
        How the training speakers' clips become clients
        (:data:`tff_ser.task.PARTITION_CHOICES`).
    clients : int
        k, for the partitions that take one (not ``"by_speaker"``).
    normalization : {"pooled", "federated", "per_client"}
        How the task standardizes its features (:func:`tff_ser.task.make_task`;
        paper 000's grid: ``"pooled"``).
    """

    name: str
    levels: Mapping[str, Tuple]
    size: str = "full"
    model: str = "mlp"
    partition: str = "by_speaker"
    clients: int = 4
    normalization: str = "pooled"

    def __post_init__(self):
        missing = [v for v in VARIABLES if v not in self.levels]
        extra = [v for v in self.levels if v not in VARIABLES]
        if missing or extra:
            raise ValueError(f"a grid needs levels for exactly {VARIABLES}; "
                             f"missing {missing}, unknown {extra}")
        for var, values in self.levels.items():
            if len(values) == 0 or len(set(values)) != len(values):
                raise ValueError(f"levels of {var} must be non-empty and distinct; got {values}")
        if any(int(v) < 1 for v in self.levels["rounds"]):
            raise ValueError(f"rounds (NGE) must be >= 1; got {self.levels['rounds']}")
        if self.size not in ("full", "small"):
            raise ValueError(f"size must be 'full' or 'small'; got {self.size!r}")
        from tff_ser.task import PARTITION_CHOICES
        if self.partition not in PARTITION_CHOICES:
            raise ValueError(f"partition must be one of {PARTITION_CHOICES}; got "
                             f"{self.partition!r}")
        if int(self.clients) < 1:
            raise ValueError(f"clients must be >= 1; got {self.clients}")
        from tff_ser.features.normalize import NORMALIZATIONS
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}; got "
                             f"{self.normalization!r}")
        # Frozen dataclass: normalise to sorted tuples through object.__setattr__.
        object.__setattr__(self, "levels",
                           {v: tuple(sorted(self.levels[v])) for v in VARIABLES})

    def recipe(self, split_seed: int = 0):
        """The :class:`tff_ser.task.TaskRecipe` every point of the grid trains on.

        The partition and the held-out speakers do not depend on a point's
        training seed: the study builds one task (seed 0) for all its points.
        """
        from tff_ser.task import TaskRecipe
        return TaskRecipe(self.model, partition=self.partition, k=int(self.clients),
                          split_seed=split_seed, normalization=self.normalization)

    def __len__(self) -> int:
        n = 1
        for v in VARIABLES:
            n *= len(self.levels[v])
        return n

    @property
    def milestones(self) -> Tuple[int, ...]:
        """The NGE values: rounds at which a trajectory is evaluated."""
        return tuple(int(r) for r in self.levels["rounds"])

    @property
    def final_round(self) -> int:
        """The largest NGE: how far every trajectory runs."""
        return max(self.milestones)

    def points(self) -> List[Dict]:
        """Every grid point, in the order they are queued.

        CD outermost (the engine compiles per client count), then NGE, then
        NLE, BS, LR: within one client count the queue first takes every
        trajectory to its first milestone, then every one to the next, so
        that workers popping the queue in order (Optuna's ``study.ask``)
        extend different trajectories at the same time instead of waiting on
        one trajectory's lock; a later milestone resumes from the earlier
        one's checkpoint.
        """
        order = ("client_fraction", "rounds", "local_epochs", "batch_size", "client_lr")
        out = []
        for values in itertools.product(*(self.levels[v] for v in order)):
            point = dict(zip(order, values))
            out.append({v: point[v] for v in VARIABLES})
        return out

    def trajectories(self) -> List[Dict]:
        """The distinct (NLE, LR, BS, CD) combinations."""
        seen, out = set(), []
        for point in self.points():
            key = trajectory_key(point)
            if key not in seen:
                seen.add(key)
                out.append({v: point[v] for v in TRAJECTORY_VARIABLES})
        return out

    def contains(self, point: Mapping) -> bool:
        """Whether ``point`` is one of the grid's points."""
        return all(v in point and point[v] in self.levels[v] for v in VARIABLES)

    def to_dict(self) -> dict:
        d = {"name": self.name, "size": self.size, "model": self.model,
             "partition": self.partition, "clients": int(self.clients),
             "levels": {v: list(self.levels[v]) for v in VARIABLES}}
        if self.normalization != "pooled":  # studies saved before the option read the same
            d["normalization"] = self.normalization
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "GridSpace":
        """Inverse of :meth:`to_dict` (a study saved without a task recipe is paper 000's)."""
        return cls(name=d["name"], levels={k: tuple(v) for k, v in d["levels"].items()},
                   size=d.get("size", "full"), model=d.get("model", "mlp"),
                   partition=d.get("partition", "by_speaker"), clients=int(d.get("clients", 4)),
                   normalization=d.get("normalization", "pooled"))


#: Paper 000's grid, equations (2)-(6): 576 points.
PAPER_000_GRID = GridSpace("paper000", {
    "rounds": (50, 100, 150, 200),
    "local_epochs": (1, 3, 5),
    "client_lr": (0.1, 0.01, 0.001),
    "batch_size": (8, 16, 32, 64),
    "client_fraction": (0.10, 0.50, 0.75, 1.0),
}, size="full")

#: A grid small enough for CI: 8 points (4 trajectories of 4 rounds) on the
#: 12-speaker test corpus.
QUICK_GRID = GridSpace("quick", {
    "rounds": (2, 4),
    "local_epochs": (1,),
    "client_lr": (0.01, 0.001),
    "batch_size": (16,),
    "client_fraction": (0.5, 1.0),
}, size="small")

#: The "default setup" row of paper 000's Table I.
PAPER_000_DEFAULT = {"rounds": 200, "local_epochs": 3, "client_lr": 0.001, "batch_size": 32,
                     "client_fraction": 1.0}

#: Paper 000's Table I (CREMA-D, the authors' laptop): accuracy, point, time in s.
PAPER_000_TABLE_I = (
    {"result": "Default setup", "accuracy": 0.751, "rounds": 200, "local_epochs": 3,
     "client_lr": 0.001, "batch_size": 32, "client_fraction": 1.0, "computation_time": 352},
    {"result": "Optimal accuracy", "accuracy": 0.771, "rounds": 50, "local_epochs": 5,
     "client_lr": 0.01, "batch_size": 16, "client_fraction": 0.50, "computation_time": 97},
    {"result": "Optimal comp. time", "accuracy": 0.729, "rounds": 50, "local_epochs": 1,
     "client_lr": 0.001, "batch_size": 16, "client_fraction": 0.10, "computation_time": 25},
)

#: Paper 000's Table II, the Pareto-optimal points.
PAPER_000_TABLE_II = (
    (0.729, 50, 1, 0.001, 16, 0.10, 25.55),
    (0.737, 50, 1, 0.001, 32, 0.10, 25.66),
    (0.743, 50, 5, 0.001, 32, 0.10, 33.52),
    (0.760, 50, 1, 0.01, 8, 0.50, 59.41),
    (0.771, 50, 5, 0.01, 16, 0.50, 96.98),
)

GRIDS = {"paper000": PAPER_000_GRID, "quick": QUICK_GRID}


def get_grid(quick: bool) -> GridSpace:
    """The quick CI grid or paper 000's grid."""
    return QUICK_GRID if quick else PAPER_000_GRID


def trajectory_key(point: Mapping) -> str:
    """Folder name of the trajectory a point belongs to, e.g. ``nle3_lr0.001_bs32_cd1.0``.

    Points that differ only in NGE share it.
    """
    missing = [v for v in TRAJECTORY_VARIABLES if v not in point]
    if missing:
        raise ValueError(f"a grid point needs {TRAJECTORY_VARIABLES}; "
                         f"{dict(point)} lacks {missing}")
    return (f"nle{int(point['local_epochs'])}_lr{float(point['client_lr']):g}"
            f"_bs{int(point['batch_size'])}_cd{float(point['client_fraction']):g}")


def point_label(point: Mapping) -> str:
    """``NGE50 NLE5 LR0.01 BS16 CD0.5``."""
    return " ".join(f"{ABBREVIATIONS[v]}{point[v]:g}" if isinstance(point[v], float)
                    else f"{ABBREVIATIONS[v]}{point[v]}" for v in VARIABLES)


def point_key(point: Mapping) -> Tuple:
    """Hashable identity of a point (values in :data:`VARIABLES` order, normalised)."""
    return (int(point["rounds"]), int(point["local_epochs"]), float(point["client_lr"]),
            int(point["batch_size"]), float(point["client_fraction"]))

