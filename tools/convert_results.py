"""Convert saved runs from RunResult format version 1 to version 2, in place.

Version 1 configs and run keys left out the FederatedConfig fields added after
paper 001's runs (algorithm, aggregator, DP, optimizer arguments) where they
held their defaults, and some run keys still carried the run's name and
engine; tff_ser read them through compatibility code.  Version 2 writes every
field, so a saved key is compared as it is.  This tool fills in the missing
fields with their defaults (what those runs trained with), drops the naming
fields from run keys, and refuses a federated run whose rounds sampled
another number of clients than CD samples now (saved before 2026-12-02's
rounding rule: retrain it instead).  It also brings checkpoint folders'
``run_config.json`` up to date, so a run in progress resumes.

    .venv/bin/python tools/convert_results.py results            # convert
    .venv/bin/python tools/convert_results.py results --check    # say what would change

Exit status 1 when a run must be retrained (listed), 0 otherwise.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

from tff_ser.experiments.configs import RUN_KEY_IGNORES
from tff_ser.fedconfig import FederatedConfig, sampled_per_round
from tff_ser.rundir import atomic_write_json, atomic_write_text

#: Every FederatedConfig field at its default, as version 2 writes it.
DEFAULTS = FederatedConfig().to_dict()
#: The fields version 1 omitted at their default.
LATER = ("client_optimizer_kwargs", "server_optimizer_kwargs", "algorithm", "algorithm_kwargs",
         "proximal_strength", "weighted", "aggregator", "noise_multiplier", "dp_clip",
         "dp_delta", "dp_clients_per_round")


def _fill(config: dict) -> dict:
    """``config`` (a flat FederatedConfig dict, maybe with other keys) with the later fields."""
    if "rounds" not in config or "client_lr" not in config:
        return config  # not a federated config (e.g. a centralized run's)
    return {**config, **{k: DEFAULTS[k] for k in LATER if k not in config}}


def _sampling_ok(doc: dict) -> bool:
    config = doc.get("config") or {}
    n, cd = config.get("num_train_clients"), config.get("client_fraction")
    if config.get("mode") != "federated" or n is None or cd is None:
        return True
    sampled = {row.get("clients") for row in doc.get("history", [])
               if row.get("clients") is not None}
    return sampled <= {sampled_per_round(int(n), float(cd))}


def convert_result(doc: dict) -> dict:
    """A version-1 ``result.json`` document as version 2."""
    out = dict(doc, version=2, config=_fill(dict(doc.get("config") or {})))
    extra = dict(doc.get("extra") or {})
    key = extra.get("run_key")
    if isinstance(key, dict) and isinstance(key.get("run_spec"), dict):
        spec = {k: v for k, v in key["run_spec"].items() if k not in RUN_KEY_IGNORES}
        extra["run_key"] = dict(key, run_spec=_fill(spec))
    out["extra"] = extra
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", help="folders to search for result.json and "
                                                 "run_config.json")
    parser.add_argument("--check", action="store_true", help="change nothing; say what would")
    args = parser.parse_args(argv)
    converted, retrain, configs = [], [], []
    for root in map(pathlib.Path, args.roots):
        for path in sorted(root.rglob("result.json")):
            doc = json.loads(path.read_text())
            if doc.get("format") != "tff_ser.RunResult" or doc.get("version") != 1:
                continue
            if not _sampling_ok(doc):
                retrain.append(path)
                continue
            converted.append(path)
            if not args.check:
                atomic_write_text(path, json.dumps(convert_result(doc), indent=2) + "\n")
        for path in sorted(root.rglob("run_config.json")):
            doc = json.loads(path.read_text())
            filled = _fill(doc)
            if filled != doc:
                configs.append(path)
                if not args.check:
                    atomic_write_json(path, filled)
    verb = "would convert" if args.check else "converted"
    print(f"{verb} {len(converted)} result(s) to version 2 and {len(configs)} checkpoint "
          f"run_config.json file(s)")
    for path in retrain:
        print(f"retrain (sampled another number of clients than CD does now): {path}",
              file=sys.stderr)
    return 1 if retrain else 0


if __name__ == "__main__":
    sys.exit(main())
