"""The corpus's problems, as every result records them.

A run trains on the clips that could be used; what was left out or looks
damaged must travel with its numbers, not vanish into a Python attribute.
:func:`corpus_problems` gathers, for one run's clips:

* ``skipped``: files the loader left out (misnamed, broken, LFS pointers,
  path-encoding failures) and clips the feature extractor left out
  (undecodable, silent);
* ``suspicious``: clips kept but damaged-looking (a WAV cut short, a header
  that disagrees with the file size, under 0.2 s);
* ``missing_classes``: requested emotions with no clip at all (UAR and macro
  F1 then average over fewer classes).

``train`` and ``features`` print the counts, ``result.json`` keeps it all
(``extra.corpus_problems``), and ``--strict`` (:func:`check_strict`) turns any
of it into an error.
"""
from __future__ import annotations

from typing import Sequence

from tff_ser.errors import CorpusProblems

#: How many items of each list the printed summary names.
LISTED = 5


def corpus_problems(load, features, emotions: Sequence[str]) -> dict:
    """Skipped and suspicious clips and missing classes of a run's corpus (JSON-ready)."""
    skipped = [{"path": s.path, "reason": s.reason, "stage": "corpus"}
               for s in getattr(load, "skipped", [])]
    skipped += [{"path": clip.path, "reason": reason, "stage": "features"}
                for clip, reason in getattr(features, "skipped", [])]
    used = {c.path for c in features.clips}
    suspicious = [{"path": s.path, "reason": s.reason}
                  for s in getattr(load, "suspicious", []) if s.path in used]
    present = {c.emotion for c in features.clips}
    missing = [e for e in emotions if e not in present]
    return {"counts": {"clips_used": len(features.clips), "skipped": len(skipped),
                       "suspicious": len(suspicious), "missing_classes": len(missing)},
            "skipped": skipped, "suspicious": suspicious, "missing_classes": missing}


def has_problems(problems: dict) -> bool:
    c = problems.get("counts", {})
    return bool(c.get("skipped") or c.get("suspicious") or c.get("missing_classes"))


def format_problems(problems: dict) -> str:
    """A few lines for the terminal ('' when the corpus is clean)."""
    if not has_problems(problems):
        return ""
    c = problems["counts"]
    lines = [f"corpus problems: {c['skipped']} clip(s) skipped, {c['suspicious']} suspicious "
             f"clip(s) kept, {c['missing_classes']} class(es) without clips "
             "(all recorded in result.json under extra.corpus_problems; --strict stops here)"]
    for key, label in (("skipped", "skipped"), ("suspicious", "suspicious")):
        for item in problems[key][:LISTED]:
            lines.append(f"  {label}: {item['reason']}")
        if len(problems[key]) > LISTED:
            lines.append(f"  ... and {len(problems[key]) - LISTED} more {label}")
    if problems["missing_classes"]:
        lines.append(f"  no clips of {', '.join(problems['missing_classes'])}: UAR and macro F1 "
                     "average over the classes present only")
    return "\n".join(lines)


def check_strict(problems: dict) -> None:
    """Raise :class:`~tff_ser.errors.CorpusProblems` if the corpus has any problem."""
    if has_problems(problems):
        c = problems["counts"]
        raise CorpusProblems(
            f"--strict: the corpus has {c['skipped']} skipped clip(s), {c['suspicious']} "
            f"suspicious clip(s) and {c['missing_classes']} class(es) without clips (listed "
            "above); fix or remove those files, or run without --strict to train on the good "
            "clips and record the others")
