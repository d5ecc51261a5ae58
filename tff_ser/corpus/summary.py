"""One line naming a corpus, and the fingerprint that identifies it wherever it lies.

Experiments, the HPO and the CLI print :func:`describe_corpus` (a generated
corpus is never passed off as CREMA-D) and match saved runs on
:func:`corpus_fingerprint` (not on the corpus path, so committed results are
read back in any clone).
"""
from __future__ import annotations

import os
from typing import Sequence

#: How a generated corpus is named in every table and summary.
GENERATED_NOTICE = "generated stand-in corpus, not CREMA-D"


def describe_corpus(load, clips: Sequence) -> str:
    """One line naming the corpus; a generated one is never passed off as CREMA-D."""
    speakers = len({c.speaker for c in clips})
    if load.corpus == "generated":
        name = GENERATED_NOTICE
    elif load.corpus == "crema-d":
        name = "CREMA-D"
    elif load.corpus == "crema-d-layout":
        name = ("a corpus in CREMA-D layout, not known to be CREMA-D (all 91 actors and "
                "7,400+ clips make it CREMA-D; name it with --corpus-name)")
    else:
        name = load.corpus
    line = f"{name}: {len(clips)} clips from {speakers} speakers in {load.root}"
    noise = _noise(load)
    if noise:
        line += (f"; a noisy copy: {noise.get('kind')} noise at {noise.get('snr_db'):g} dB SNR on "
                 f"{len(noise.get('speakers') or [])} speakers' clips (NOISE.json)")
    return line


def corpus_fingerprint(load, clips: Sequence) -> dict:
    """What identifies the corpus a run used, wherever it lies on disk.

    The corpus kind, the number of clips and a SHA-1 of their ids, speakers
    and emotions, plus the generator's parameters for a generated corpus.
    Saved runs are matched on this rather than on the corpus path, so
    committed results are read back in any clone of the repository.
    """
    import hashlib
    import json
    from tff_ser.corpus.cremad import GENERATED_MARKER, cremad_audio_dir, find_marker
    digest = hashlib.sha1()
    for clip in sorted(clips, key=lambda c: c.clip_id):
        digest.update(f"{clip.clip_id}|{clip.speaker}|{clip.emotion}\n".encode())
    fingerprint = {"corpus": load.corpus, "n_clips": len(clips), "clips_sha1": digest.hexdigest()}
    if load.corpus == "generated":
        marker = find_marker(cremad_audio_dir(load.root), GENERATED_MARKER)
        if marker:
            with open(marker, encoding="utf-8") as f:
                fingerprint["generator"] = json.load(f).get("parameters")
    noise = _noise(load)
    if noise:  # a noisy copy has the clean corpus' clip ids: its runs must not pass for clean ones
        fingerprint["noise"] = {k: noise.get(k) for k in ("kind", "snr_db", "seed", "speakers")}
    return fingerprint


def _noise(load) -> dict:
    """The ``NOISE.json`` of a noisy copy (beside or above its audio folder), else ``{}``."""
    from tff_ser.corpus.noise import noise_record
    root = str(load.root)
    return noise_record(root) or noise_record(os.path.dirname(root.rstrip(os.sep))) or {}
