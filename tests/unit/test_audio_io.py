"""Reading audio: dtype, channels, sample rate, silence and the error type."""
import pickle

import numpy as np
import pytest
import soundfile

from tff_ser.corpus.audio import (AudioError, audio_info, is_silent, load_audio,
                                  peak_dbfs, probe_audio, to_mono)


def tone(seconds=0.5, sr=16000, freq=440.0, amplitude=0.5):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(signal, sr):
    spectrum = np.abs(np.fft.rfft(signal))
    return np.fft.rfftfreq(len(signal), 1 / sr)[np.argmax(spectrum)]


def test_16k_pcm_wav_loads_as_1d_float32_in_unit_range(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(0.5), 16000, subtype="PCM_16")
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) == 8000
    assert 0.49 < np.abs(y).max() <= 0.5 + 1e-4


def test_44k_stereo_is_averaged_to_mono_and_resampled_keeping_pitch(tmp_path):
    left, right = tone(0.5, 44100, amplitude=0.8), np.zeros(22050, np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 44100)
    y = load_audio(path, sr=16000)
    assert y.ndim == 1 and len(y) == 8000
    assert abs(dominant_frequency(y, 16000) - 440) < 5
    # averaging the two channels halves a tone present in only one of them
    assert 0.38 < np.abs(y[100:-100]).max() < 0.42


def test_load_matches_librosa_load_at_16k(tmp_path):
    import librosa
    path = tmp_path / "stereo.wav"
    rng = np.random.default_rng(0)
    soundfile.write(path, rng.uniform(-0.5, 0.5, (22050, 2)).astype(np.float32), 44100)
    ours = load_audio(path, sr=16000)
    theirs, _ = librosa.load(path, sr=16000, mono=True)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_sr_none_keeps_the_native_rate(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(0.25, 22050), 22050)
    assert len(load_audio(path, sr=None)) == int(round(0.25 * 22050))


@pytest.mark.parametrize("bad_sr", [0, -16000, 16000.5, "16k", True])
def test_non_positive_integer_sr_is_rejected_with_the_value(tmp_path, bad_sr):
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(0.1), 16000)
    with pytest.raises(ValueError, match="positive integer sample rate"):
        load_audio(path, sr=bad_sr)


def test_flac_is_read_like_wav(tmp_path):
    path = tmp_path / "a.flac"
    soundfile.write(path, tone(0.3), 16000)
    assert len(load_audio(path)) == 4800


def test_audio_info_reads_the_header_without_decoding(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, np.zeros((11025, 2), np.float32), 44100)
    info = audio_info(path)
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, 11025)
    assert info.duration == pytest.approx(0.25)


def test_probe_of_a_good_file_finds_no_problem(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(0.3), 16000)
    assert probe_audio(path) is None


def test_missing_file_raises_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_nan_samples_are_an_audio_error(tmp_path):
    path = tmp_path / "nan.wav"
    y = tone(0.1)
    y[10] = np.nan
    soundfile.write(path, y, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path)


def test_audio_error_is_a_value_error_that_survives_pickling():
    err = AudioError("x.wav is empty", path="x.wav", kind="empty")
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, ValueError)
    assert (str(back), back.path, back.kind) == ("x.wav is empty", "x.wav", "empty")


def test_silence_is_judged_by_peak_level():
    assert is_silent(np.zeros(16000, np.float32))
    assert is_silent(np.full(100, 10 ** (-90 / 20)))  # -90 dBFS
    assert not is_silent(np.full(100, 10 ** (-70 / 20)))  # -70 dBFS
    assert is_silent(np.full(100, 10 ** (-70 / 20)), threshold_dbfs=-60)
    assert is_silent(np.array([], np.float32))


def test_peak_dbfs_of_half_scale_is_minus_6_db():
    assert peak_dbfs(np.array([0.0, -0.5, 0.25])) == pytest.approx(-6.0206, abs=1e-3)
    assert peak_dbfs(np.zeros(4)) == float("-inf")


def test_to_mono_averages_channels_and_rejects_3d():
    np.testing.assert_allclose(to_mono(np.array([[1.0, 0.0], [0.5, 0.5]])), [0.5, 0.5])
    with pytest.raises(ValueError, match="shape"):
        to_mono(np.zeros((2, 2, 2)))
