"""Features: pure functions of (signal, sr), and the cached, parallel stage over clips.

===============  ===========  ================================================
kind             shape        from
===============  ===========  ================================================
``paper001``     (100, 34)    paper 001: pyAudioAnalysis short-term features
``clip_stats``   (136,)       paper 000: mean/std of those and their deltas
``logmel``       (300, 40)    paper 004: 40-d log Mel filterbank
``spectrogram``  (140, 140)   paper 003: pooled 8 s log-power spectrogram
``egemaps``      (88,)        openSMILE eGeMAPSv02 functionals
``compare``      (6373,)      openSMILE ComParE_2016 functionals
``embeddings``   (dim,) or    a user's own per-clip ``.npy`` files (wav2vec,
                 (frames,     WavLM, HuBERT ... extracted elsewhere):
                 dim)         :func:`load_embeddings`
===============  ===========  ================================================

>>> from tff_ser.features import extract, Standardizer      # doctest: +SKIP
>>> fs = extract(clips, "paper001")                          # doctest: +SKIP
"""
from tff_ser.features.embeddings import EmbeddingError, load_embeddings
from tff_ser.features.logmel import log_mel_filterbank
from tff_ser.features.normalize import Standardizer
from tff_ser.features.pipeline import (FEATURE_CODE_VERSION, FEATURE_KINDS,
                                       FeatureExtractionError, FeatureKind, FeatureSet,
                                       extract)
from tff_ser.features.pyaudioanalysis import (CLIP_STATISTIC_NAMES, FEATURE_NAMES,
                                              clip_statistics, paper001_frames,
                                              short_term_features)
from tff_ser.features.spectrogram import pooled_spectrogram

__all__ = [
    "CLIP_STATISTIC_NAMES", "EmbeddingError", "FEATURE_CODE_VERSION", "FEATURE_KINDS",
    "FEATURE_NAMES", "FeatureExtractionError", "FeatureKind", "FeatureSet", "Standardizer",
    "clip_statistics", "extract", "load_embeddings", "log_mel_filterbank", "paper001_frames",
    "pooled_spectrogram", "short_term_features",
]
