"""How a DARTS search trains (paper 003's settings): no TensorFlow here.

:class:`SearchSpec` is read by configs and validated when an experiment is
declared (``tff-ser --help`` lists experiments), so it must not load
TensorFlow; the engine that searches is :mod:`tff_ser.engines.fednas`.
"""
from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """The architecture side of a DARTS / FedNAS search, and the weights' extras.

    The weights' optimizer is the run's client optimizer (paper 003: SGD,
    lr 0.025, momentum 0.9: ``FederatedConfig(client_optimizer="sgdm",
    client_lr=0.025)``); these are the rest of paper 003's section 3.3 and of
    the DARTS code it uses.

    Parameters
    ----------
    arch_lr : float
        Adam learning rate of the architecture parameters (paper 003: 3e-4).
    arch_beta_1, arch_beta_2 : float
        Their Adam betas (DARTS's code: 0.5 and 0.999).
    arch_weight_decay : float
        L2 on the architecture parameters (DARTS's code: 1e-3).
    weight_decay : float
        L2 on the weights (paper 003: 3e-4).
    grad_clip : float
        The weights' gradient is clipped to this global norm (DARTS's code: 5).
    lr_min : float
        The weights' learning rate anneals from ``client_lr`` to this over the
        rounds on a cosine (DARTS's code: 0.001).
    val_fraction : float
        Share of each training client's clips that trains the architecture
        parameters (DARTS: half); the rest trains the weights.
    """

    arch_lr: float = 3e-4
    arch_beta_1: float = 0.5
    arch_beta_2: float = 0.999
    arch_weight_decay: float = 1e-3
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    lr_min: float = 0.001
    val_fraction: float = 0.5

    def __post_init__(self):
        for name in ("arch_lr", "grad_clip"):
            if not 0.0 < float(getattr(self, name)) < math.inf:
                raise ValueError(f"{name} must be > 0 and finite, got {getattr(self, name)}")
        for name in ("arch_weight_decay", "weight_decay", "lr_min"):
            if not 0.0 <= float(getattr(self, name)) < math.inf:
                raise ValueError(f"{name} must be >= 0 and finite, got {getattr(self, name)}")
        for name in ("arch_beta_1", "arch_beta_2", "val_fraction"):
            if not 0.0 < float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def cosine_lr(self, lr: float, round_num: int, rounds: int) -> float:
        """DARTS's cosine annealing of the weights' learning rate, round ``round_num`` (1-based)."""
        if rounds <= 1:
            return float(lr)
        return float(self.lr_min + 0.5 * (lr - self.lr_min)
                     * (1.0 + math.cos(math.pi * (round_num - 1) / rounds)))
