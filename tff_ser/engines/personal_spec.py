"""Which personalization a run trains, and its knobs: no TensorFlow here.

:class:`PersonalSpec` is read by configs and validated when an experiment is
declared (``tff-ser --help`` lists experiments), so it must not load
TensorFlow; the engine that trains it is :mod:`tff_ser.engines.personal`.
"""
from __future__ import annotations

import dataclasses

#: Personalized FedAvg methods (:class:`PersonalSpec`).
METHODS = ("fedper", "fedrep", "fedbn", "ditto")
#: The methods whose personal part is the model's head.
HEAD_METHODS = ("fedper", "fedrep")
#: The methods whose personal part never leaves the client (the rest is averaged).
LOCAL_METHODS = HEAD_METHODS + ("fedbn",)


@dataclasses.dataclass(frozen=True)
class PersonalSpec:
    """Which personalization, and its knobs.

    Parameters
    ----------
    method : {"fedper", "fedrep", "fedbn", "ditto"}
    personal_layers : int
        FedPer and FedRep: how many of the model's last layers with weights are each
        client's own (1: the softmax layer).
    ditto_lambda : float
        Ditto's lambda, the pull of a personal model toward the global one.
    """

    method: str = "fedper"
    personal_layers: int = 1
    ditto_lambda: float = 0.1

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"personalization method must be one of {METHODS}, got "
                             f"{self.method!r}")
        if int(self.personal_layers) < 1:
            raise ValueError(f"personal_layers must be >= 1, got {self.personal_layers}")
        if not 0.0 <= float(self.ditto_lambda) < float("inf"):
            raise ValueError(f"ditto_lambda must be >= 0 and finite, got {self.ditto_lambda}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
