"""Differential privacy of DP-FedAvg: the run's (epsilon, delta) from ``dp-accounting``.

DP-FedAvg (McMahan et al. 2018, TFF's ``tff.learning.dp_aggregator``) clips
each sampled client's update and adds Gaussian noise of std
``noise_multiplier * clip`` to their sum: user-level (here speaker-level,
one client per speaker) privacy.  With adaptive clipping the clip is itself
estimated with noise, and TFF splits ``noise_multiplier`` between the two
queries so that the total is that of one Gaussian mechanism of this
multiplier (tensorflow_privacy's ``QuantileAdaptiveClipSumQuery``).

The accountant is ``dp_accounting.rdp.RdpAccountant`` over the sampling the
config really uses (:func:`tff_ser.fedconfig.sample_clients`): CD samples a
fixed ``m`` of the ``N`` training clients each round, without replacement,
so every round is a ``SampledWithoutReplacementDpEvent(N, m,
GaussianDpEvent(z))`` (replace-one neighbouring, the relation RDP supports
for that sampling); with every client in every round (``m == N``) a round is
the plain ``GaussianDpEvent(z)`` (add-or-remove-one).  Rounds compose.
"""
from __future__ import annotations

from typing import List

import numpy as np


def _accountant_and_event(noise_multiplier: float, sampled: int, num_clients: int):
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant
    if not 1 <= sampled <= num_clients:
        raise ValueError(f"sampled clients must be in [1, {num_clients}], got {sampled}")
    gaussian = dp_accounting.GaussianDpEvent(float(noise_multiplier))
    if sampled == num_clients:
        return RdpAccountant(), gaussian
    rel = dp_accounting.NeighboringRelation.REPLACE_ONE
    event = dp_accounting.SampledWithoutReplacementDpEvent(int(num_clients), int(sampled), gaussian)
    return RdpAccountant(neighboring_relation=rel), event


def epsilon_by_round(noise_multiplier: float, rounds: int, sampled: int, num_clients: int,
                     delta: float) -> List[float]:
    """epsilon at ``delta`` after each of rounds 1..``rounds`` (``inf`` without noise)."""
    if noise_multiplier <= 0:
        return [float("inf")] * int(rounds)
    accountant, event = _accountant_and_event(noise_multiplier, sampled, num_clients)
    out = []
    for _ in range(int(rounds)):
        accountant.compose(event)
        out.append(float(accountant.get_epsilon(delta)))
    return out


def dp_epsilon(noise_multiplier: float, rounds: int, sampled: int, num_clients: int,
               delta: float) -> float:
    """epsilon at ``delta`` after ``rounds`` rounds of DP-FedAvg."""
    if noise_multiplier <= 0:
        return float("inf")
    accountant, event = _accountant_and_event(noise_multiplier, sampled, num_clients)
    accountant.compose(event, int(rounds))
    return float(accountant.get_epsilon(delta))


def privacy_report(config, num_train_clients: int, rounds_done: int) -> dict:
    """What a DP run's result records: epsilon, delta and how they were counted."""
    from tff_ser.fedconfig import sampled_per_round
    m = sampled_per_round(num_train_clients, config.client_fraction)
    eps = dp_epsilon(config.noise_multiplier, rounds_done, m, num_train_clients, config.dp_delta)
    return {"epsilon": eps if np.isfinite(eps) else None, "delta": config.dp_delta,
            "noise_multiplier": config.noise_multiplier, "rounds": int(rounds_done),
            "clients_per_round": m, "num_clients": int(num_train_clients),
            "clipping": "adaptive" if config.dp_clip is None else f"fixed {config.dp_clip}",
            "unit": "client (speaker) level",
            "accountant": "dp_accounting RdpAccountant, " + (
                "Gaussian per round" if m == num_train_clients
                else "fixed-size sampling without replacement (replace-one)")}
