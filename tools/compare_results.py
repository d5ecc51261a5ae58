"""Compare two results folders of one experiment run by run, paired over seeds.

For the cross-stack check (README, "Two stacks"): the same experiment trained
on the reference stack and on the current stack, each row (model, setup,
mode) compared on accuracy and macro-F1 with :func:`tff_ser.stats.compare`
(95 % t-intervals and a paired t-test over the seeds both have).

Usage::

    python tools/compare_results.py results/paper000_per_speaker results/stacks/paper000_per_speaker_current \\
        --labels reference current --out results/stacks/paper000_per_speaker.md
"""
from __future__ import annotations

import argparse
import json
import pathlib

import pandas as pd

METRICS = ("accuracy", "f1_macro")


def _stack_of(folder: pathlib.Path) -> str:
    stacks = set()
    for result in sorted(folder.glob("runs/*/result.json")):
        extra = json.loads(result.read_text()).get("extra") or {}
        machine = extra.get("machine") or {}
        stack = machine.get("stack")
        if stack:
            stacks.add(f"TF {stack.get('tensorflow')}, Keras {stack.get('keras')}, NumPy "
                       f"{stack.get('numpy')}, TFF {stack.get('tensorflow_federated') or 'none'}")
        else:  # runs saved before stacks were recorded name TensorFlow only
            stacks.add(f"TF {machine.get('tensorflow', '?')}, stack not recorded")
    return "; ".join(sorted(stacks)) or "?"


def compare_folders(a: pathlib.Path, b: pathlib.Path, labels=("a", "b")) -> str:
    from tff_ser.stats import compare, mean_interval
    ta, tb = pd.read_csv(a / "results.csv"), pd.read_csv(b / "results.csv")
    keys = ["model", "setup", "mode"]
    lines = [f"# {a.name}: {labels[0]} vs {labels[1]}", "",
             f"- {labels[0]}: `{a}` ({_stack_of(a)})",
             f"- {labels[1]}: `{b}` ({_stack_of(b)})", "",
             "| model | setup | mode | metric | " + f"{labels[0]} mean [95 % CI] | "
             f"{labels[1]} mean [95 % CI] | difference | reading |", "|" + "---|" * 8]
    for key, ga in ta.groupby(keys):
        gb = tb[(tb[keys] == pd.Series(key, index=keys)).all(axis=1)]
        if gb.empty:
            continue
        for metric in METRICS:
            va = dict(zip(ga["seed"], ga[metric]))
            vb = dict(zip(gb["seed"], gb[metric]))
            ia, ib = mean_interval(list(va.values())), mean_interval(list(vb.values()))
            c = compare(vb, va)
            reading = c.reading(labels[1], labels[0], metric).split(": ", 1)[-1]
            lines.append(f"| {' | '.join(map(str, key))} | {metric} | {ia.mean:.3f} "
                         f"[{ia.low:.3f}, {ia.high:.3f}] | {ib.mean:.3f} [{ib.low:.3f}, "
                         f"{ib.high:.3f}] | {c.diff:+.4f} | {reading} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--labels", nargs=2, default=("a", "b"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    text = compare_folders(pathlib.Path(args.a), pathlib.Path(args.b), tuple(args.labels))
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
