"""How hard is the generated corpus? A centralized check on unseen speakers.

The generated corpus stands in for CREMA-D, so it must be about as hard:
on real CREMA-D, listeners recognise 40.9 % of clips over 6 classes from
audio alone (Cao et al. 2014) and a federated MLP on handcrafted features
reaches about 66 % UAR over 4 classes (FedAudio). A stand-in that a simple
model solves perfectly would make every comparison in the notebooks
meaningless; one it cannot learn at all would too.

:func:`calibration_accuracy` measures the corpus the way paper 000 splits
CREMA-D: 136 clip statistics (pyAudioAnalysis style), 80 % of speakers to
train a centralized MLP [256, 128], 20 % held out, standardised on the
training speakers only. The generator's difficulty (emotion-effect sizes,
clip-to-clip variation, acting skill, noise) was tuned until the full-size
corpus lands in :data:`TARGET_ACCURACY`. It also checks that speaker
identity is in the audio (a speaker classifier on unseen sentences of known
speakers should be far above chance), since paper 000's clients are speakers.

Run it from the shell::

    python -m tff_ser.experiments.calibrate data/generated
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

from tff_ser.corpus.records import EMOTIONS_4

#: Held-out-speaker 4-class accuracy a fair CREMA-D stand-in should give.
TARGET_ACCURACY = (0.55, 0.85)

#: Sentences held out per speaker by the speaker-identity check: three of
#: the twelve, so it tests the voice, not the words.
SPEAKER_CHECK_SENTENCES = ("IWL", "MTI", "TSI")


def _mlp(seed: int, hidden_layer_sizes, max_iter: int):
    from sklearn.neural_network import MLPClassifier
    # early stopping on a slice of the training speakers' clips keeps the
    # check cheap and stops it from memorising those speakers' voices
    return MLPClassifier(hidden_layer_sizes=tuple(hidden_layer_sizes), max_iter=max_iter,
                         early_stopping=True, validation_fraction=0.1, n_iter_no_change=15,
                         random_state=seed)


def emotion_accuracy(x: np.ndarray, y: np.ndarray, speakers: Sequence[str],
                     val_speakers: Sequence[str], *, emotions: Sequence[str] = EMOTIONS_4,
                     hidden_layer_sizes=(256, 128), max_iter: int = 300, seed: int = 0
                     ) -> dict:
    """Train an MLP on some speakers' clips and score it on the others.

    Parameters
    ----------
    x : (n_clips, n_features) array
        Clip-level features.
    y : (n_clips,) int array
        Class index of each clip in ``emotions``.
    speakers : sequence of str
        Speaker of each clip.
    val_speakers : sequence of str
        Held-out speakers; every other speaker trains.
    emotions : sequence of str, default EMOTIONS_4
    hidden_layer_sizes : tuple of int, default (256, 128)
        Paper 000's MLP.
    max_iter : int, default 300
    seed : int, default 0

    Returns
    -------
    dict
        :func:`tff_ser.metrics.classification_metrics` on the held-out
        speakers' clips, plus ``per_class_recall``.
    """
    from tff_ser.features.normalize import Standardizer
    from tff_ser.metrics import classification_metrics

    speakers = np.asarray(speakers)
    held_out = np.isin(speakers, list(val_speakers))
    if held_out.all() or not held_out.any():
        raise ValueError("val_speakers must name some, but not all, of the clips' speakers")
    scaler = Standardizer().fit(x[~held_out])
    model = _mlp(seed, hidden_layer_sizes, max_iter).fit(scaler.transform(x[~held_out]),
                                                         y[~held_out])
    metrics = classification_metrics(y[held_out], model.predict(scaler.transform(x[held_out])),
                                     num_classes=len(emotions), class_names=list(emotions))
    metrics["per_class_recall"] = {e: metrics["per_class"][e]["recall"] for e in emotions}
    return metrics


def speaker_identification_accuracy(x: np.ndarray, speakers: Sequence[str],
                                    sentences: Sequence[str], *,
                                    held_out_sentences: Sequence[str] = SPEAKER_CHECK_SENTENCES,
                                    hidden_layer_sizes=(256, 128), max_iter: int = 300,
                                    seed: int = 0) -> dict:
    """Who is speaking, on sentences the classifier never heard them say.

    Returns
    -------
    dict
        ``accuracy``, ``chance`` (1 / number of speakers), ``n_speakers``,
        ``n_test``.
    """
    from tff_ser.features.normalize import Standardizer

    speakers, sentences = np.asarray(speakers), np.asarray(sentences)
    test = np.isin(sentences, list(held_out_sentences))
    if test.all() or not test.any():
        raise ValueError(f"held_out_sentences {tuple(held_out_sentences)} must cover some, "
                         f"but not all, clips; the corpus has {sorted(set(sentences))}")
    # integer labels: MLPClassifier's early stopping cannot score string classes
    names, labels = np.unique(speakers, return_inverse=True)
    scaler = Standardizer().fit(x[~test])
    model = _mlp(seed, hidden_layer_sizes, max_iter).fit(scaler.transform(x[~test]),
                                                         labels[~test])
    accuracy = float(np.mean(model.predict(scaler.transform(x[test])) == labels[test]))
    n = len(names)
    return {"accuracy": accuracy, "chance": 1.0 / n, "n_speakers": n, "n_test": int(test.sum())}


def calibration_accuracy(data_dir, *, seed: int = 0, emotions: Sequence[str] = EMOTIONS_4,
                         val_fraction: float = 0.2, feature_kind: str = "clip_stats",
                         hidden_layer_sizes=(256, 128), max_iter: int = 300,
                         speaker_check: bool = True, cache_dir=None,
                         n_jobs: Optional[int] = None, progress: bool = False) -> dict:
    """Held-out-speaker emotion accuracy of a centralized MLP on a corpus.

    Parameters
    ----------
    data_dir : str or os.PathLike
        Corpus in CREMA-D layout (the generated one, or real CREMA-D for
        comparison).
    seed : int, default 0
        Seed of the speaker split and of the MLP.
    emotions : sequence of str, default EMOTIONS_4
    val_fraction : float, default 0.2
        Share of speakers held out (91 -> 73 train / 18 held out, paper 000).
    feature_kind : str, default "clip_stats"
        Feature kind of :func:`tff_ser.features.pipeline.extract`: the 136
        pyAudioAnalysis mean/std statistics.
    hidden_layer_sizes : tuple of int, default (256, 128)
    max_iter : int, default 300
    speaker_check : bool, default True
        Also run :func:`speaker_identification_accuracy` (needs the corpus
        to hold some of :data:`SPEAKER_CHECK_SENTENCES` and other sentences).
    cache_dir : path-like, optional
        Feature cache (default: the pipeline's, next to ``AudioWAV``).
    n_jobs : int, optional
        Feature-extraction workers (all cores by default).
    progress : bool, default False

    Returns
    -------
    dict
        ``accuracy``, ``uar``, ``per_class_recall`` (emotion -> recall),
        ``confusion_matrix``, ``chance``, ``in_target`` (accuracy within
        :data:`TARGET_ACCURACY`), ``n_clips``, ``n_train_speakers``,
        ``n_val_speakers``, ``corpus`` (``"generated"`` or ``"crema-d"``),
        ``seconds``, and ``speaker_id`` (the speaker check's dict or None).

    Examples
    --------
    >>> r = calibration_accuracy("data/generated")  # doctest: +SKIP
    >>> r["accuracy"], r["per_class_recall"]        # doctest: +SKIP
    """
    from tff_ser.corpus.cremad import load_cremad
    from tff_ser.features.pipeline import extract
    from tff_ser.partition import split_speakers

    started = time.perf_counter()
    emotions = tuple(emotions)
    load = load_cremad(data_dir, emotions=emotions)
    features = extract(load.clips, feature_kind, cache_dir=cache_dir, n_jobs=n_jobs,
                       progress=progress)
    if features.x.ndim != 2:
        raise ValueError(f"feature kind {feature_kind!r} gives {features.x.shape[1:]}-shaped "
                         "features per clip; calibration needs one vector per clip "
                         "(use 'clip_stats')")
    clips = features.clips
    x = features.x.astype(np.float64)
    y = features.labels(emotions)
    speakers = [c.speaker for c in clips]
    train_speakers, val_speakers = split_speakers(clips, val_fraction=val_fraction, seed=seed)
    metrics = emotion_accuracy(x, y, speakers, val_speakers, emotions=emotions,
                               hidden_layer_sizes=hidden_layer_sizes, max_iter=max_iter,
                               seed=seed)
    speaker_id = None
    sentences = [c.sentence for c in clips]
    if speaker_check and set(sentences) - set(SPEAKER_CHECK_SENTENCES) \
            and set(sentences) & set(SPEAKER_CHECK_SENTENCES):
        speaker_id = speaker_identification_accuracy(
            x, speakers, sentences, hidden_layer_sizes=hidden_layer_sizes,
            max_iter=max_iter, seed=seed)
    accuracy = float(metrics["accuracy"])
    return {
        "accuracy": accuracy,
        "uar": float(metrics["balanced_accuracy"]),
        "per_class_recall": metrics["per_class_recall"],
        "confusion_matrix": metrics["confusion_matrix"],
        "emotions": list(emotions),
        "chance": 1.0 / len(emotions),
        "in_target": TARGET_ACCURACY[0] <= accuracy <= TARGET_ACCURACY[1],
        "target": list(TARGET_ACCURACY),
        "n_clips": len(clips),
        "n_skipped": len(features.skipped),
        "n_train_speakers": len(train_speakers),
        "n_val_speakers": len(val_speakers),
        "corpus": load.corpus,
        "feature_kind": feature_kind,
        "speaker_id": speaker_id,
        "seconds": time.perf_counter() - started,
    }


def format_calibration(result: dict) -> str:
    """The calibration result as a few lines of text."""
    recall = ", ".join(f"{e} {r:.2f}" for e, r in result["per_class_recall"].items())
    lines = [
        f"corpus: {result['corpus']} ({result['n_clips']} clips; {result['n_train_speakers']} "
        f"train / {result['n_val_speakers']} held-out speakers; {result['feature_kind']})",
        f"held-out-speaker accuracy {result['accuracy']:.3f}, UAR {result['uar']:.3f} "
        f"(chance {result['chance']:.2f}; target {result['target'][0]:.2f}-"
        f"{result['target'][1]:.2f}: {'in range' if result['in_target'] else 'OUT OF RANGE'})",
        f"per-class recall: {recall}",
    ]
    if result.get("speaker_id"):
        s = result["speaker_id"]
        lines.append(f"speaker identification on unheard sentences: {s['accuracy']:.3f} "
                     f"(chance {s['chance']:.3f}, {s['n_speakers']} speakers)")
    lines.append(f"{result['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tff_ser.experiments.calibrate",
        description="Held-out-speaker accuracy of a centralized MLP on a CREMA-D-layout corpus.")
    parser.add_argument("data_dir", help="corpus root (e.g. data/generated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=None, help="feature-extraction workers")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data_dir):
        parser.error(f"{args.data_dir} is not a directory; generate a corpus first with "
                     "`tff-ser data generate`")
    result = calibration_accuracy(args.data_dir, seed=args.seed, n_jobs=args.jobs,
                                  progress=True)
    print(json.dumps(result, indent=2) if args.json else format_calibration(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
