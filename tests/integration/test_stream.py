"""Streaming inference (paper 002's future work): windows cover the recording exactly, at the right times."""
import numpy as np
import pytest

from tff_ser.models import build_model
from tff_ser.stream import score_stream, window_spans


@pytest.mark.parametrize("duration,window,hop", [(10.0, 2.5, 1.0), (7.3, 2.0, 2.0),
                                                 (3.0, 2.5, 0.5), (1.2, 2.5, 1.0)])
def test_windows_cover_the_recording_exactly_hop_apart(duration, window, hop):
    starts, ends = window_spans(duration, window, hop)
    assert starts[0] == 0.0 and ends[-1] == pytest.approx(duration)
    assert np.all(ends - starts == pytest.approx(min(window, duration)))
    # no gap: each window starts at or before the previous one's end, hop apart but the last
    assert np.all(starts[1:] <= ends[:-1] + 1e-12)
    np.testing.assert_allclose(np.diff(starts)[:-1], hop)
    assert len(starts) == (1 if duration <= window else int(np.ceil((duration - window) / hop)) + 1)


def test_bad_windows_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="leave gaps"):
        window_spans(10.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="empty"):
        window_spans(0.0, 1.0, 0.5)


def test_a_model_scores_each_window_and_the_times_match_the_audio():
    sr = 16000
    rng = np.random.default_rng(0)
    t = np.arange(int(6.5 * sr)) / sr
    # 6.5 s: a loud 220 Hz tone in the first 2 s, quiet noise after
    signal = np.where(t < 2.0, 0.5 * np.sin(2 * np.pi * 220 * t), 0.01 * rng.normal(size=t.size))
    model = build_model("mlp", seed=0)
    scores = score_stream(model, signal.astype(np.float32), sr, feature_kind="clip_stats",
                          window_s=2.0, hop_s=1.0)
    np.testing.assert_allclose(scores.starts, [0, 1, 2, 3, 4, 4.5])
    np.testing.assert_allclose(scores.ends, [2, 3, 4, 5, 6, 6.5])
    assert scores.probabilities.shape == (6, 4)
    np.testing.assert_allclose(scores.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert scores.duration == pytest.approx(6.5) and scores.real_time_factor > 0
    # each window's probabilities are the model on that window's own features
    from tff_ser.features.pyaudioanalysis import clip_statistics
    third = clip_statistics(signal[2 * sr:4 * sr].astype(np.float32), sr)
    np.testing.assert_allclose(scores.probabilities[2], model(third[None]).numpy()[0], atol=1e-5)
    rows = scores.to_rows()
    assert rows[0]["start_s"] == 0.0 and rows[-1]["end_s"] == 6.5 and rows[0]["label"] in "NEU HAP SAD ANG"


def test_a_stereo_signal_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="mono"):
        score_stream(build_model("mlp", seed=0), np.zeros((16000, 2)), 16000,
                     feature_kind="clip_stats")


def test_clips_joined_into_one_recording_keep_their_times_and_draw(small_corpus_dir):
    from tff_ser.corpus import load_corpus
    from tff_ser.plots import plot_stream
    from tff_ser.stream import concatenate_clips
    clips = load_corpus(small_corpus_dir).clips[:3]
    signal, segments = concatenate_clips(clips, sr=16000, gap_s=0.5)
    assert [s[2] for s in segments] == [c.emotion for c in clips]
    assert segments[0][0] == 0.0 and segments[-1][1] == pytest.approx(len(signal) / 16000)
    for (_, end, _), (start, _, _) in zip(segments, segments[1:]):
        assert start - end == pytest.approx(0.5)
    scores = score_stream(build_model("mlp", seed=0), signal, 16000, feature_kind="clip_stats",
                          window_s=1.0, hop_s=0.5)
    fig = plot_stream(scores.starts, scores.ends, scores.probabilities, scores.class_names,
                      segments=segments)
    assert len(fig.axes[0].lines) == 4
