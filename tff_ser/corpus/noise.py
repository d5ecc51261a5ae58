"""Noisy clients (FedAudio's challenge): additive noise at a chosen SNR, made offline.

:func:`make_noisy_corpus` copies a corpus directory (CREMA-D layout) and mixes
noise into the clips of the chosen speakers -- the clients of a per-speaker
federation -- at ``snr_db``: white, pink (1/f power) or babble (other
speakers' clips of the same corpus, summed).  The copy is an ordinary corpus
directory (features are extracted and cached from it as from any other), and
its ``NOISE.json`` records what was done: kind, SNR, seed, speakers, and the
SNR measured on every mixed clip.

The SNR is over the whole clip: ``10 log10(sum(clean^2) / sum(noise^2))``
with the noise scaled to hit it exactly; :func:`measured_snr` recomputes it
from the clean and the mixed signals (``tests/integration/test_noisy_clients.py``).
Mixed clips that would clip at full scale are scaled down together with
their noise, which leaves the SNR unchanged.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Dict, Optional, Sequence

import numpy as np

#: Noise kinds :func:`make_noisy_corpus` mixes in.
NOISE_KINDS = ("white", "pink", "babble")
#: What ``NOISE.json`` is called in a noisy corpus directory.
NOISE_RECORD = "NOISE.json"


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-variance Gaussian white noise."""
    return rng.standard_normal(n)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of pink noise (power falling as 1/f), unit variance."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=float)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    return noise / (noise.std() or 1.0)


def babble_noise(n: int, talkers: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of babble: the ``talkers``' signals, each looped from a random offset, summed."""
    if not len(talkers):
        raise ValueError("babble noise needs at least one other talker's signal")
    out = np.zeros(n)
    for signal in talkers:
        signal = np.asarray(signal, float)
        start = int(rng.integers(0, len(signal)))
        out += np.resize(np.roll(signal, -start), n)
    return out / (out.std() or 1.0)


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``clean`` plus ``noise`` scaled so that the clip's SNR is ``snr_db`` exactly."""
    clean = np.asarray(clean, float)
    noise = np.asarray(noise, float)[:len(clean)]
    p_clean, p_noise = np.sum(clean ** 2), np.sum(noise ** 2)
    if p_clean == 0 or p_noise == 0:
        raise ValueError("cannot set an SNR with a silent clip or silent noise")
    scale = np.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10)))
    return clean + scale * noise


def measured_snr(clean: np.ndarray, mixed: np.ndarray) -> float:
    """The SNR of ``mixed`` against its ``clean`` part, in dB."""
    clean, mixed = np.asarray(clean, float), np.asarray(mixed, float)
    return float(10 * np.log10(np.sum(clean ** 2) / np.sum((mixed - clean) ** 2)))


def make_noisy_corpus(source: str, out: str, *, speakers: Sequence[str], snr_db: float,
                      kind: str = "white", seed: int = 0, babble_talkers: int = 4,
                      sr: int = 16000) -> Dict[str, object]:
    """Copy corpus ``source`` to ``out``, the clips of ``speakers`` mixed with noise at ``snr_db``.

    Parameters
    ----------
    source, out : str
        A corpus directory in CREMA-D layout (``AudioWAV/`` beside its metadata), and
        where the copy goes (must not exist yet).
    speakers : sequence of str
        The speakers (clients) whose clips get noise; every other clip is copied as is.
    snr_db : float
        The clip-level SNR of the mixed clips.
    kind : {"white", "pink", "babble"}
        Babble mixes ``babble_talkers`` clips of *other* speakers than the clip's own.
    seed : int
        Seeds the noise (one stream per clip, from the clip's position and this seed).

    Returns
    -------
    dict
        The record written to ``out/NOISE.json``.
    """
    import soundfile
    from tff_ser.corpus.audio import load_audio
    from tff_ser.corpus.cremad import cremad_audio_dir, parse_cremad_name
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    if os.path.exists(out):
        raise FileExistsError(f"{out} exists; give a new folder for the noisy copy")
    root, audio_dir = cremad_audio_dir(source)
    names = sorted(f for f in os.listdir(audio_dir) if f.lower().endswith(".wav"))
    speaker_of = {f: (parse_cremad_name(f)[0] or {}).get("speaker") for f in names}
    unknown = sorted(set(speakers) - set(speaker_of.values()))
    if unknown:
        raise ValueError(f"speakers {unknown} have no clips in {audio_dir}")
    shutil.copytree(root, out, ignore=shutil.ignore_patterns("*.wav", "*.WAV"))
    target = os.path.normpath(os.path.join(out, os.path.relpath(audio_dir, root)))
    os.makedirs(target, exist_ok=True)
    chosen, measured = set(speakers), {}
    for i, name in enumerate(names):
        src = os.path.join(audio_dir, name)
        if speaker_of[name] not in chosen:
            shutil.copy2(src, os.path.join(target, name))
            continue
        clean = load_audio(src, sr=sr).astype(float)
        rng = np.random.default_rng([int(seed), i])
        if kind == "white":
            noise = white_noise(len(clean), rng)
        elif kind == "pink":
            noise = pink_noise(len(clean), rng)
        else:
            others = [f for f in names if speaker_of[f] != speaker_of[name]]
            picks = rng.choice(len(others), size=min(babble_talkers, len(others)), replace=False)
            noise = babble_noise(len(clean), [load_audio(os.path.join(audio_dir, others[j]),
                                                         sr=sr) for j in picks], rng)
        mixed = mix_at_snr(clean, noise, snr_db)
        peak = np.max(np.abs(mixed))
        if peak > 0.999:  # scale clean and noise together: the SNR stays
            mixed, clean = mixed * (0.999 / peak), clean * (0.999 / peak)
        soundfile.write(os.path.join(target, name), mixed.astype(np.float32), sr,
                        subtype="FLOAT")
        measured[name] = measured_snr(clean, mixed)
    record = {"source": os.path.abspath(source), "kind": kind, "snr_db": float(snr_db),
              "seed": int(seed), "speakers": sorted(chosen), "sample_rate": sr,
              "babble_talkers": babble_talkers if kind == "babble" else None,
              "measured_snr_db": measured}
    with open(os.path.join(out, NOISE_RECORD), "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1)
    return record


def noise_record(corpus_dir: str) -> Optional[dict]:
    """``NOISE.json`` of a noisy corpus copy, or None for a clean corpus."""
    path = os.path.join(corpus_dir, NOISE_RECORD)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
