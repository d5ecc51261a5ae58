"""``tff-ser`` command line: data, features, single runs, experiments, HPO.

The CLI is the outermost layer: it parses arguments, calls the package and
prints; nothing in the package imports it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _add_data(sub):
    p = sub.add_parser("data", help="generate or inspect corpora")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    g = dsub.add_parser("generate", help="write the embedded generated corpus (CREMA-D layout)")
    g.add_argument("--out", default=None,
                   help="output directory (default: data/generated, or data/generated-small)")
    g.add_argument("--size", choices=("full", "small"), default="full")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--emotions", choices=("4", "all"), default="4",
                   help="4 = NEU/HAP/SAD/ANG (papers' subset); all = CREMA-D's 6")
    g.add_argument("--speakers", type=int, default=None, help="number of speakers (default 91)")
    g.add_argument("--overwrite", action="store_true")
    g.add_argument("--jobs", type=int, default=None)
    c = dsub.add_parser("check", help="print what a corpus directory holds and its problems")
    c.add_argument("dir")


def _add_features(sub):
    p = sub.add_parser("features", help="extract (and cache) features of a corpus")
    p.add_argument("--data-dir", default=None, help="corpus directory (default: see README)")
    p.add_argument("--kind", action="append", default=None,
                   help="feature kind (paper001, clip_stats, logmel, spectrogram); repeatable")
    p.add_argument("--jobs", type=int, default=None)


#: ``--engine`` choices (tff_ser.engines.base.ENGINE_NAMES, spelled out to keep the CLI import-light).
ENGINE_CHOICES = ("auto", "tff", "batched", "tf")


def _add_train(sub):
    p = sub.add_parser("train", help="one federated (and/or centralized) run")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--model", default="mlp")
    p.add_argument("--partition", default="by_speaker",
                   help="by_speaker, iid, single_emotion, class_balanced, dirichlet")
    p.add_argument("--clients", type=int, default=4, help="k for iid/single_emotion/...")
    p.add_argument("--alpha", type=float, default=0.5, help="dirichlet concentration")
    p.add_argument("--rounds", type=int, default=20, help="NGE")
    p.add_argument("--local-epochs", type=int, default=1, help="NLE")
    p.add_argument("--batch-size", type=int, default=20, help="BS")
    p.add_argument("--client-fraction", type=float, default=1.0, help="CD")
    p.add_argument("--client-lr", type=float, default=0.001)
    p.add_argument("--server-lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--client-optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--server-optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                   help="who computes the FedAvg rounds: auto (the fastest engine that "
                        "implements the model: batched for Dense/Dropout MLPs, else tf), tff "
                        "(TFF's process, the reference), batched, tf (plain TensorFlow, any "
                        "model, CPU or GPU)")
    p.add_argument("--centralized", action="store_true", help="also train the centralized baseline")
    p.add_argument("--out", default=None, help="save the result(s) here")
    p.add_argument("--checkpoint-dir", default=None, help="resume from / save to here")


def _cmd_data(args):
    if args.data_cmd == "generate":
        from tff_ser.corpus import default_generated_dir
        from tff_ser.corpus.generate import generate_corpus
        out = args.out or default_generated_dir(args.size)
        kw = {}
        if args.speakers:
            kw["n_speakers"] = args.speakers
        emotions = "all" if args.emotions == "all" else None
        if emotions:
            kw["emotions"] = "all"
        report = generate_corpus(out, size=args.size, seed=args.seed, overwrite=args.overwrite,
                                 n_jobs=args.jobs, **kw)
        print(report)
        return 0
    from tff_ser.corpus.check import check_directory, format_report
    print(format_report(check_directory(args.dir)))
    return 0


def _cmd_features(args):
    from tff_ser.corpus import resolve_corpus
    from tff_ser.features.pipeline import extract
    load = resolve_corpus(args.data_dir)
    print(load.summary())
    for kind in args.kind or ["paper001", "clip_stats"]:
        t0 = time.perf_counter()
        fs = extract(load.clips, kind, n_jobs=args.jobs)
        print(f"{kind}: {fs.x.shape} in {time.perf_counter() - t0:.1f} s "
              f"({len(fs.skipped)} skipped)")
    return 0


def _cmd_train(args):
    from tff_ser.experiments.common import prepare_task
    from tff_ser.centralized import CentralizedConfig, train_centralized
    from tff_ser.federated import FederatedConfig, train_federated
    task = prepare_task(args.model, partition=args.partition, k=args.clients, alpha=args.alpha,
                        data_dir=args.data_dir, seed=args.seed)
    print(task.info.get("description", ""))
    cfg = FederatedConfig(rounds=args.rounds, local_epochs=args.local_epochs,
                          batch_size=args.batch_size, client_fraction=args.client_fraction,
                          client_lr=args.client_lr, server_lr=args.server_lr, seed=args.seed,
                          client_optimizer=args.client_optimizer,
                          server_optimizer=args.server_optimizer)
    results = {"federated": train_federated(task, cfg, checkpoint_dir=args.checkpoint_dir,
                                            engine=args.engine)}
    if args.centralized:
        results["centralized"] = train_centralized(task, CentralizedConfig.matching(cfg))
    for name, r in results.items():
        print(f"{name}: " + json.dumps(r.summary_row(), default=str))
        if args.out:
            r.save(os.path.join(args.out, name))
    return 0


def _cmd_run(args):
    """The README's main job on the embedded corpus."""
    from tff_ser.experiments.registry import run_main_job
    return run_main_job(data_dir=args.data_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tff-ser", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_data(sub)
    _add_features(sub)
    _add_train(sub)
    r = sub.add_parser("run", help="the main job on the embedded corpus (README)")
    r.add_argument("--data-dir", default=None)
    try:
        from tff_ser.experiments.registry import add_experiment_parser
        add_experiment_parser(sub)
    except ImportError:
        pass
    try:
        from tff_ser.hpo.cli import add_hpo_parser
        add_hpo_parser(sub)
    except ImportError:
        pass
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"data": _cmd_data, "features": _cmd_features, "train": _cmd_train,
                "run": _cmd_run}
    handler = handlers.get(args.cmd) or getattr(args, "handler", None)
    try:
        return int(handler(args) or 0)
    finally:
        if "tff_ser.runtime" in sys.modules:
            sys.modules["tff_ser.runtime"].shutdown()


if __name__ == "__main__":
    sys.exit(main())
