"""Feature functions (papers 000, 001, 003, 004), the extraction stage, and scaling.

Signals are synthetic (sines, noise, chirps at 16 kHz) so every expected
value follows from the formula, not from a stored fixture.
"""
import logging

import librosa
import numpy as np
import pytest
import soundfile

from tff_ser.corpus.records import Clip
from tff_ser.features import (CLIP_STATISTIC_NAMES, FEATURE_KINDS, FEATURE_NAMES,
                              FeatureExtractionError, Standardizer, clip_statistics,
                              extract, log_mel_filterbank, paper001_frames,
                              pooled_spectrogram, short_term_features)
from tff_ser.features.pyaudioanalysis import chroma_matrix, mfcc_filter_banks
from tff_ser.features.spectrogram import average_pool_frames

SR = 16000


def tone(freq, seconds=2.5, amp=0.5, sr=SR):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds=2.5, amp=0.1, seed=0, sr=SR):
    return (amp * np.random.default_rng(seed).normal(size=int(seconds * sr))).astype(np.float32)


def chirp(seconds=2.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * (100 * t + 600 * t ** 2))).astype(np.float32)


# --- pyAudioAnalysis short-term features (paper 001) ----------------------------------

def test_there_are_34_short_term_features_in_pyaudioanalysis_order():
    assert len(FEATURE_NAMES) == 34
    assert FEATURE_NAMES[:8] == ("zcr", "energy", "energy_entropy", "spectral_centroid",
                                 "spectral_spread", "spectral_entropy", "spectral_flux",
                                 "spectral_rolloff")
    assert FEATURE_NAMES[8:21] == tuple(f"mfcc_{i}" for i in range(1, 14))
    assert FEATURE_NAMES[21:33] == tuple(f"chroma_{i}" for i in range(1, 13))
    assert FEATURE_NAMES[33] == "chroma_std"


@pytest.mark.parametrize("freq", [200.0, 1000.0, 3000.0])
def test_zero_crossing_rate_of_a_sine_is_twice_its_frequency_over_sr(freq):
    zcr = short_term_features(tone(freq), SR)[:, FEATURE_NAMES.index("zcr")]
    # Each 3200-sample window holds a whole number of crossings: exact to
    # within the one crossing a window edge can add or cut.
    np.testing.assert_allclose(zcr, 2 * freq / SR, atol=1.01 / (3200 - 1))
    assert abs(zcr.mean() - 2 * freq / SR) < 0.002 * 2 * freq / SR + 1 / 3199


@pytest.mark.parametrize("freq", [200.0, 1000.0, 3000.0])
def test_spectral_centroid_of_a_sine_is_its_frequency_over_nyquist(freq):
    # Whole cycles per 0.2 s window, so the rectangular window does not leak.
    features = short_term_features(tone(freq), SR)
    centroid = features[:, FEATURE_NAMES.index("spectral_centroid")]
    spread = features[:, FEATURE_NAMES.index("spectral_spread")]
    np.testing.assert_allclose(centroid, freq / (SR / 2), atol=0.002)
    assert np.all(spread < 0.01)


def test_spectral_rolloff_is_the_tone_frequency_and_0_9_for_white_noise():
    rolloff = FEATURE_NAMES.index("spectral_rolloff")
    np.testing.assert_allclose(short_term_features(tone(1000.0), SR)[:, rolloff],
                               1000.0 / (SR / 2), atol=1e-3)
    assert abs(short_term_features(noise(), SR)[:, rolloff].mean() - 0.90) < 0.01


def test_white_noise_centroid_is_half_nyquist():
    centroid = short_term_features(noise(), SR)[:, FEATURE_NAMES.index("spectral_centroid")]
    assert abs(centroid.mean() - 0.5) < 0.01


def test_energy_entropy_is_log2_10_for_a_steady_tone_and_near_zero_for_clicks():
    entropy = FEATURE_NAMES.index("energy_entropy")
    assert np.allclose(short_term_features(tone(1000.0), SR)[:, entropy], np.log2(10), atol=1e-3)
    clicks = np.zeros(int(2.5 * SR), dtype=np.float32)
    clicks[::3200] = 1.0  # one click per 0.2 s window
    assert short_term_features(clicks, SR)[:, entropy].max() < 0.01


def test_energy_and_spectral_features_of_silence_are_zero():
    features = short_term_features(np.zeros(SR, dtype=np.float32), SR)
    for name in ("zcr", "energy", "energy_entropy", "spectral_centroid", "spectral_spread",
                 "spectral_entropy", "spectral_flux", "spectral_rolloff", "chroma_std"):
        assert np.all(features[:, FEATURE_NAMES.index(name)] == 0), name
    assert np.all(features[:, 21:33] == 0)


def test_a_silent_stretch_inside_a_clip_has_negligible_energy_and_no_crossings():
    signal = tone(500.0)
    signal[SR:2 * SR] = 0.0
    features = short_term_features(signal, SR)
    # Windows lying wholly inside the silence: start >= 1 s, end <= 2 s.
    silent = [i for i in range(len(features)) if i * 400 >= SR and i * 400 + 3200 <= 2 * SR]
    assert len(silent) == 33  # starts 1.0 s .. 1.8 s, every 25 ms
    energy = features[:, FEATURE_NAMES.index("energy")]
    # Only the clip-wide DC removal leaves a tiny constant there.
    assert np.all(energy[silent] < 1e-6 * energy[0])
    assert np.all(features[silent, FEATURE_NAMES.index("zcr")] == 0)


def test_spectral_flux_is_zero_for_a_steady_tone_and_positive_for_a_chirp():
    flux = FEATURE_NAMES.index("spectral_flux")
    assert np.allclose(short_term_features(tone(1000.0), SR)[:, flux], 0, atol=1e-9)
    chirped = short_term_features(chirp(), SR)[:, flux]
    assert chirped[0] == 0  # the first window is compared with itself
    assert np.all(chirped[1:] > 1e-5)


def test_features_do_not_depend_on_level_or_dc_offset():
    signal = chirp() + noise(amp=0.01)
    quiet_and_offset = 0.05 * signal + 0.01
    np.testing.assert_allclose(short_term_features(quiet_and_offset, SR),
                               short_term_features(signal, SR), rtol=1e-3, atol=1e-4)


def test_chroma_is_a_share_of_frame_power_and_chroma_std_its_spread():
    features = short_term_features(chirp(), SR, window=0.05)
    chroma = features[:, 21:33]
    assert np.all(chroma >= 0) and np.all(chroma.sum(axis=1) <= 1 + 1e-6)
    np.testing.assert_allclose(features[:, 33], chroma.std(axis=1), rtol=1e-5, atol=1e-7)


def test_each_chroma_slot_reads_a_single_bin_like_pyaudioanalysis():
    weights = chroma_matrix(SR, 400)
    assert weights.shape == (400, 12)
    # pyAudioAnalysis keeps one bin per semitone: no bin feeds two classes.
    assert np.all(np.count_nonzero(weights, axis=1) <= 1)


def test_mfcc_filterbank_has_13_linear_and_27_log_filters_of_unit_area():
    bank = mfcc_filter_banks(SR, 1600)
    assert bank.shape == (40, 1600)
    peaks = bank.argmax(axis=1)
    assert np.all(np.diff(peaks) > 0)
    # Linear part: centres 200/3 Hz apart in pyAudioAnalysis's bin units
    # (sr / num_fft = 10 Hz per bin): 6-7 bins between neighbouring peaks.
    assert set(np.diff(peaks[:13])) <= {6, 7}
    # Log part: spacing grows with frequency.
    assert np.diff(peaks[13:]).mean() > np.diff(peaks[:13]).mean()
    area = bank.sum(axis=1) * SR / 1600
    np.testing.assert_allclose(area[1:39], 1.0, rtol=0.1)


def test_short_term_frames_follow_window_and_step():
    for seconds, expected in ((2.5, 93), (1.0, 33), (0.2, 1)):
        assert short_term_features(noise(seconds), SR).shape == (expected, 34)
    assert short_term_features(noise(1.0), SR, window=0.05, step=0.025).shape == (39, 34)


def test_paper001_frames_pads_short_clips_with_zero_rows_and_truncates_long_ones():
    short = noise(1.0)
    padded = paper001_frames(short, SR)
    assert padded.shape == (100, 34)
    np.testing.assert_array_equal(padded[:33], short_term_features(short, SR))
    assert np.all(padded[33:] == 0)
    long = noise(5.0)
    truncated = paper001_frames(long, SR)
    np.testing.assert_array_equal(truncated, short_term_features(long, SR)[:100])


def test_clip_statistics_are_means_then_stds_of_features_and_their_deltas():
    signal = chirp() + noise(amp=0.02)
    stats = clip_statistics(signal, SR)
    assert stats.shape == (136,) and stats.dtype == np.float32
    short = short_term_features(signal, SR, window=0.05, step=0.025).astype(np.float64)
    deltas = np.vstack([np.zeros((1, 34)), np.diff(short, axis=0)])
    expected = np.concatenate([short.mean(0), deltas.mean(0), short.std(0), deltas.std(0)])
    np.testing.assert_allclose(stats, expected, rtol=1e-4, atol=1e-6)
    assert CLIP_STATISTIC_NAMES[0] == "zcr_mean"
    assert CLIP_STATISTIC_NAMES[34] == "delta zcr_mean"
    assert CLIP_STATISTIC_NAMES[68] == "zcr_std"
    assert CLIP_STATISTIC_NAMES[135] == "delta chroma_std_std"


def test_feature_functions_reject_clips_shorter_than_one_window_with_advice():
    for function in (short_term_features, paper001_frames, clip_statistics, log_mel_filterbank):
        with pytest.raises(ValueError, match="zero-pad"):
            function(noise(0.01), SR)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((100, 2), dtype=np.float32), "mono"),
    (np.zeros(8000, dtype=np.int16), "float"),
    (np.full(8000, np.nan, dtype=np.float32), "NaN"),
])
def test_feature_functions_explain_bad_signals(bad, message):
    with pytest.raises(ValueError, match=message):
        short_term_features(bad, SR)


# --- log Mel filterbank (paper 004) ----------------------------------------------------

def test_log_mel_of_a_1khz_tone_peaks_in_the_band_centred_nearest_1khz():
    log_mel = log_mel_filterbank(tone(1000.0, 1.0), SR)
    centres = librosa.mel_frequencies(n_mels=42, fmin=0.0, fmax=SR / 2)[1:-1]
    assert log_mel.shape[1] == 40
    assert np.all(log_mel.argmax(axis=1) == np.abs(centres - 1000.0).argmin())


def test_log_mel_frames_step_10ms_over_25ms_windows():
    assert log_mel_filterbank(noise(1.0), SR).shape == (1 + (SR - 400) // 160, 40)


def test_log_mel_pads_with_the_silence_floor_and_truncates():
    signal = noise(1.0)
    full = log_mel_filterbank(signal, SR)
    padded = log_mel_filterbank(signal, SR, n_frames=300)
    assert padded.shape == (300, 40)
    np.testing.assert_array_equal(padded[:len(full)], full)
    np.testing.assert_allclose(padded[len(full):], np.log(1e-10))
    np.testing.assert_array_equal(log_mel_filterbank(signal, SR, n_frames=50), full[:50])


# --- pooled spectrogram (paper 003) ----------------------------------------------------

def test_spectrogram_is_140_by_140_and_a_tone_peaks_at_its_bin():
    spec = pooled_spectrogram(tone(1000.0, 2.5), SR)
    assert spec.shape == (140, 140) and spec.dtype == np.float32
    # 400-point FFT at 16 kHz: 40 Hz per bin; the clip fills the first 2.5 of 8 s.
    assert np.all(spec[:40].argmax(axis=1) == 25)
    np.testing.assert_allclose(spec[-40:], -100.0)  # zero padding at the 1e-10 floor


def test_spectrogram_pooling_covers_every_frame_once_in_near_equal_runs():
    frames = np.arange(726, dtype=np.float64)[:, None]
    pooled = average_pool_frames(frames, 140)
    assert pooled.shape == (140, 1)
    starts = (np.arange(140) * 726) // 140
    sizes = np.diff(np.append(starts, 726))
    assert set(sizes) == {5, 6} and sizes.sum() == 726
    np.testing.assert_allclose(pooled[:, 0], [frames[s:s + n, 0].mean()
                                              for s, n in zip(starts, sizes)])


# --- registry --------------------------------------------------------------------------

@pytest.mark.parametrize("kind, shape", [("paper001", (100, 34)), ("clip_stats", (136,)),
                                         ("logmel", (300, 40)), ("spectrogram", (140, 140))])
def test_every_feature_kind_has_its_paper_shape(kind, shape):
    spec = FEATURE_KINDS[kind]
    assert spec.shape(spec.defaults) == shape
    out = spec.function(chirp(), SR, **spec.defaults)
    assert out.shape == shape and out.dtype == np.float32 and np.all(np.isfinite(out))


# --- the extraction stage ----------------------------------------------------------------

def write_wav(directory, name, signal, sr=SR):
    path = directory / name
    soundfile.write(str(path), signal, sr, subtype="PCM_16")
    return str(path)


def make_clip(path, speaker="1001", emotion="NEU", sentence="DFA"):
    return Clip(path=str(path), speaker=speaker, emotion=emotion, sentence=sentence)


@pytest.fixture
def wav_dir(tmp_path):
    directory = tmp_path / "AudioWAV"
    directory.mkdir()
    return directory


@pytest.fixture
def four_clips(wav_dir):
    signals = [tone(300.0), noise(seed=1), chirp(), tone(1500.0, seconds=2.0)]
    emotions = ["NEU", "HAP", "SAD", "ANG"]
    return [make_clip(write_wav(wav_dir, f"100{i}_DFA_{e}_XX.wav", s), speaker=f"100{i}",
                      emotion=e) for i, (s, e) in enumerate(zip(signals, emotions))]


def test_extract_stacks_every_clip_in_input_order_with_labels(four_clips):
    features = extract(four_clips, "paper001", use_cache=False, n_jobs=1, progress=False)
    assert features.x.shape == (4, 100, 34) and features.x.dtype == np.float32
    assert features.clips == four_clips
    assert features.skipped == [] and features.notes == []
    np.testing.assert_array_equal(features.labels(), [0, 1, 2, 3])
    # The row of a clip is exactly its features computed alone.
    signal, _ = soundfile.read(four_clips[2].path, dtype="float32")
    np.testing.assert_array_equal(features.x[2], paper001_frames(signal, SR))


@pytest.mark.parametrize("kind", ["paper001", "clip_stats"])
def test_parallel_extraction_is_identical_to_serial(four_clips, kind):
    clips = four_clips * 3
    serial = extract(clips, kind, use_cache=False, n_jobs=1, progress=False)
    parallel = extract(clips, kind, use_cache=False, n_jobs=2, progress=False)
    np.testing.assert_array_equal(parallel.x, serial.x)
    assert parallel.clips == serial.clips


def test_undecodable_and_missing_clips_are_skipped_and_listed(wav_dir, four_clips, caplog):
    lfs = wav_dir / "1010_IEO_HAP_HI.wav"
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123456\n")
    empty = wav_dir / "1076_MTI_SAD_XX.wav"
    empty.write_bytes(b"")
    missing = wav_dir / "1011_DFA_ANG_XX.wav"
    clips = [four_clips[0], make_clip(lfs), make_clip(empty), four_clips[1], make_clip(missing)]
    with caplog.at_level(logging.WARNING):
        features = extract(clips, "clip_stats", use_cache=False, n_jobs=1, progress=False)
    assert features.clips == [four_clips[0], four_clips[1]]
    assert features.x.shape == (2, 136)
    reasons = {c.path: r for c, r in features.skipped}
    assert reasons[str(lfs)].startswith("lfs-pointer:")
    assert reasons[str(empty)].startswith("empty:")
    assert reasons[str(missing)].startswith("missing:")
    assert "3 of 5 clips skipped" in caplog.text


def test_silent_clip_is_skipped_and_listed(wav_dir, four_clips):
    silent = make_clip(write_wav(wav_dir, "1020_DFA_NEU_XX.wav", np.zeros(SR, np.float32)))
    features = extract([silent] + four_clips, "paper001", use_cache=False, n_jobs=1,
                       progress=False)
    assert features.clips == four_clips
    assert len(features.skipped) == 1
    clip, reason = features.skipped[0]
    assert clip == silent and reason.startswith("silent: peak below -80 dBFS")


def test_clip_shorter_than_one_window_is_padded_kept_and_noted(wav_dir, four_clips):
    short = make_clip(write_wav(wav_dir, "1030_DFA_HAP_XX.wav", tone(440.0, seconds=0.1)))
    features = extract(four_clips + [short], "paper001", use_cache=False, n_jobs=1,
                       progress=False)
    assert features.clips[-1] == short and features.skipped == []
    assert [c for c, _ in features.notes] == [short]
    assert "zero-padded" in features.notes[0][1]
    row = features.x[-1]
    assert np.any(row[0] != 0) and np.all(row[1:] == 0)  # one real window, then padding


def test_every_clip_failing_is_a_clear_error(wav_dir):
    silent = make_clip(write_wav(wav_dir, "1020_DFA_NEU_XX.wav", np.zeros(SR, np.float32)))
    missing = make_clip(wav_dir / "1021_DFA_NEU_XX.wav")
    with pytest.raises(FeatureExtractionError, match="none of the 2 clips"):
        extract([silent, missing], "paper001", use_cache=False, n_jobs=1, progress=False)


def test_extract_rejects_unknown_kinds_and_parameters_naming_the_choices(four_clips):
    with pytest.raises(ValueError, match="clip_stats"):
        extract(four_clips, "mfcc", use_cache=False)
    with pytest.raises(ValueError, match="n_frames"):
        extract(four_clips, "paper001", use_cache=False, n_mels=40)
    with pytest.raises(ValueError, match="fixed n_frames"):
        extract(four_clips, "logmel", use_cache=False, n_frames=None)
    with pytest.raises(ValueError, match="no clips"):
        extract([], "paper001")


def test_extract_params_override_the_kind_defaults(four_clips):
    features = extract(four_clips, "logmel", use_cache=False, n_jobs=1, progress=False,
                       n_frames=120, n_mels=24)
    assert features.x.shape == (4, 120, 24)
    assert features.params["n_frames"] == 120 and features.params["hop_length"] == 0.010


# --- standardisation ---------------------------------------------------------------------

def test_standardizer_fitted_on_training_clients_scales_validation_with_their_stats():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(200, 100, 34))
    val = rng.normal(10.0, 5.0, size=(20, 100, 34))  # other speakers, other statistics
    scaler = Standardizer().fit(train)
    np.testing.assert_allclose(scaler.transform(train).mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(scaler.transform(train).std(axis=(0, 1)), 1, atol=1e-4)
    expected = (val - train.mean(axis=(0, 1))) / train.std(axis=(0, 1))
    np.testing.assert_allclose(scaler.transform(val), expected, rtol=1e-5, atol=1e-5)
    # The validation clients keep their offset: nothing of them went into the fit.
    assert scaler.transform(val).mean() > 2


def test_standardizer_leaves_constant_features_centred_not_divided_by_zero():
    x = np.ones((10, 3))
    x[:, 0] = np.arange(10)
    scaled = Standardizer().fit_transform(x)
    assert np.all(np.isfinite(scaled)) and np.all(scaled[:, 1:] == 0)


def test_standardizer_round_trips_through_a_dict():
    x = np.random.default_rng(1).normal(size=(50, 136))
    scaler = Standardizer().fit(x)
    restored = Standardizer.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(restored.transform(x), scaler.transform(x))


def test_standardizer_explains_misuse():
    with pytest.raises(ValueError, match="not fitted"):
        Standardizer().transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="34 features"):
        Standardizer().fit(np.zeros((5, 34))).transform(np.zeros((5, 136)))
