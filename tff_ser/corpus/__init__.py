"""Corpora: clip records, real-corpus loaders and the embedded generated corpus."""
from tff_ser.corpus.records import (CREMAD_LEVELS, CREMAD_SENTENCES, EMOTION_NAMES,
                                    EMOTIONS_4, EMOTIONS_6, Clip, label_index)
