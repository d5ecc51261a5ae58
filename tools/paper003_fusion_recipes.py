"""Paper 003's fusion networks under several training recipes, one seed, one fusion task.

How ``FUSION_FL`` (:mod:`tff_ser.baselines.paper003.configs`) was chosen: paper 001's
recipe (server Adam 1e-3) left the decision-level perceptron near ln 4 after 100 rounds
over 73 speaker clients. This script builds the fusion task of ``fusion-<level>-s<seed>``
once, from the saved branch runs of ``results/paper003_nas``, and trains its fusion
network federated (100 rounds, ``tf`` engine) under each recipe below, then centralized
with paper 003's own (100 epochs, Adam 1e-3). It prints each one's train loss and held-out
UAR; its output is committed as ``results/paper003_nas/fusion_recipes.txt``.

Usage::

    python tools/paper003_fusion_recipes.py --level decision --seed 0
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import time

from tff_ser.baselines.paper003.configs import PAPER003_NAS
from tff_ser.centralized import train_centralized
from tff_ser.experiments import runner
from tff_ser.federated import train_federated


def recipes(fl):
    """The federated recipes compared, by name (``fl``: the fusion run's declared knobs)."""
    paper001 = dataclasses.replace(fl, client_lr=1e-3, server_optimizer="adam", server_lr=1e-3)
    return {"client Adam 1e-3, server Adam 1e-3 (paper 001)": paper001,
            "client Adam 1e-3, server Adam 1e-2": dataclasses.replace(paper001, server_lr=1e-2),
            "client Adam 1e-3 NLE 10, plain average": dataclasses.replace(
                paper001, local_epochs=10, server_optimizer="sgd", server_lr=1.0),
            "client Adam 1e-2, plain average (FUSION_FL)": dataclasses.replace(
                paper001, client_lr=1e-2, server_optimizer="sgd", server_lr=1.0)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--level", choices=("decision", "feature"), default="decision")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default="results/paper003_nas",
                        help="the experiment's folder holding the saved branch runs")
    args = parser.parse_args(argv)
    _, _, features = runner._load_features(PAPER003_NAS, None, False)
    by_id = {s.run_id: s for s in PAPER003_NAS.runs()}
    spec = by_id[f"fusion-{args.level}-s{args.seed}"]
    branches = [(by_id[uid], features[runner.run_feature_kind(by_id[uid], by_id)])
                for uid in spec.branch_runs()]
    started = time.time()
    task = runner._fusion_task(spec.recipe().task(features[runner.run_feature_kind(spec, by_id)],
                                                  seed=args.seed),
                               spec, pathlib.Path(args.results) / "runs" / spec.run_id, branches)
    print(f"fusion-{args.level}-s{args.seed}: task built from "
          f"{', '.join(spec.branch_runs())} in {time.time() - started:.0f} s")
    print("| recipe | rounds (epochs) | train loss | held-out UAR |\n|---|---:|---:|---:|")
    for name, fl in recipes(spec.fl).items():
        result = train_federated(task, dataclasses.replace(fl, eval_every=0), progress=False,
                                 federated_eval=False, engine="tf")
        _row(name, fl.rounds, result)
    paper = dataclasses.replace(spec.centralized_config(), lr=1e-3)
    _row("centralized, Adam 1e-3 (paper 003)", paper.epochs,
         train_centralized(task, paper, progress=False))


def _row(name: str, rounds: int, result) -> None:
    metrics = result.final_metrics
    print(f"| {name} | {rounds} | {metrics['train_loss']:.3f} | "
          f"{metrics['validation']['balanced_accuracy']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
