"""Broken corpora fail early and say what was wrong and what to do.

Each case is checked where a user meets it: decoding one file
(:func:`load_audio`), loading a directory (the file is skipped and listed)
and, for silence, the data check.
"""
import numpy as np
import pytest
import soundfile

from tff_ser.corpus.audio import AudioError, load_audio, probe_audio
from tff_ser.corpus.check import check_directory, format_report
from tff_ser.corpus.cremad import NoClipsError, load_cremad
from tff_ser.corpus.iemocap import load_iemocap

#: What a GitHub zip download of CREMA-D holds instead of each clip.
LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
               b"size 52746\n")

GOOD = ["1001_DFA_ANG_XX", "1001_DFA_NEU_XX", "1002_DFA_SAD_XX", "1002_DFA_HAP_XX"]


def write_clip(path, seconds=0.3, sr=16000, amplitude=0.3):
    t = np.arange(int(seconds * sr)) / sr
    soundfile.write(path, (amplitude * np.sin(2 * np.pi * 200 * t)).astype(np.float32),
                    sr, subtype="PCM_16")


@pytest.fixture
def audio_dir(tmp_path):
    audio = tmp_path / "CREMA-D" / "AudioWAV"
    audio.mkdir(parents=True)
    for name in GOOD:
        write_clip(audio / f"{name}.wav")
    return audio


def truncated_header(path):
    write_clip(path)
    path.write_bytes(path.read_bytes()[:30])  # cut inside the fmt chunk


def only_reason_for(load, filename):
    reasons = [reason for path, reason in load.skipped if path.endswith(filename)]
    assert len(reasons) == 1, load.skipped
    return reasons[0]


# --- one broken file: AudioError from load_audio, skipped-and-listed by the loader

BROKEN_FILES = {
    "lfs-pointer": (lambda p: p.write_bytes(LFS_POINTER),
                    ["Git LFS pointer (130 bytes)", "52746-byte file", "git lfs pull"]),
    "empty": (lambda p: p.write_bytes(b""),
              ["is empty (0 bytes)"]),
    "truncated-header": (truncated_header,
                         ["header is truncated or corrupt", "Re-download"]),
    "not-audio": (lambda p: p.write_text("<!DOCTYPE html><html><body>404</body></html>"),
                  ["is not audio", "HTML"]),
    "no-samples": (lambda p: soundfile.write(p, np.zeros(0, np.float32), 16000),
                   ["holds no samples"]),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_FILES))
def test_load_audio_names_the_file_and_what_is_wrong(tmp_path, kind):
    make, phrases = BROKEN_FILES[kind]
    path = tmp_path / "1001_DFA_ANG_XX.wav"
    make(path)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert caught.value.kind == kind and caught.value.path == str(path)
    assert str(path) in str(caught.value)
    for phrase in phrases:
        assert phrase in str(caught.value)
    assert probe_audio(path).kind == kind


@pytest.mark.parametrize("kind", sorted(BROKEN_FILES))
def test_loader_skips_and_lists_one_broken_file(audio_dir, kind):
    make, phrases = BROKEN_FILES[kind]
    make(audio_dir / "1003_ITS_SAD_XX.wav")
    load = load_cremad(audio_dir.parent)
    assert sorted(c.clip_id for c in load.clips) == sorted(GOOD)
    reason = only_reason_for(load, "1003_ITS_SAD_XX.wav")
    for phrase in phrases:
        assert phrase in reason
    assert "skipped 1 file(s) with problems" in load.summary()
    assert phrases[0] in load.summary()


def test_non_audio_binary_named_wav_shows_its_first_bytes(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(AudioError, match=r"is not audio: its first bytes are b'\\x00"):
        load_audio(path)


def test_every_file_an_lfs_pointer_is_one_error_saying_git_lfs_pull(tmp_path):
    audio = tmp_path / "CREMA-D-main" / "AudioWAV"
    audio.mkdir(parents=True)
    for name in GOOD:
        (audio / f"{name}.wav").write_bytes(LFS_POINTER)
    with pytest.raises(AudioError, match=r"all 4 \.wav files in .*AudioWAV are Git LFS "
                                         r"pointer files.*`git lfs pull`"):
        load_cremad(audio.parent)


def test_every_iemocap_wav_an_lfs_pointer_is_one_error(tmp_path):
    session = tmp_path / "IEMOCAP_full_release" / "Session1"
    (session / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (session / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").write_text(
        "[1.0 - 2.0]\tSes01F_impro01_F000\tneu\t[2.5, 2.5, 2.5]\n")
    (session / "sentences" / "wav" / "Ses01F_impro01").mkdir(parents=True)
    (session / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F000.wav"
     ).write_bytes(LFS_POINTER)
    with pytest.raises(AudioError, match="Git LFS pointer files"):
        load_iemocap(tmp_path)


# --- names and labels

def test_unparseable_file_name_is_skipped_with_the_expected_pattern(audio_dir):
    write_clip(audio_dir / "angry_take3.wav")
    reason = only_reason_for(load_cremad(audio_dir), "angry_take3.wav")
    assert "does not match ActorID_Sentence_Emotion_Level.wav" in reason
    assert "1001_DFA_ANG_XX.wav" in reason  # shows an example of the pattern


def test_unknown_emotion_code_is_skipped_not_filtered(audio_dir):
    write_clip(audio_dir / "1001_DFA_JOY_XX.wav")
    load = load_cremad(audio_dir, emotions="all")
    reason = only_reason_for(load, "1001_DFA_JOY_XX.wav")
    assert "emotion code 'JOY' is unknown" in reason and "NEU, HAP, SAD, ANG" in reason
    assert load.filtered == 0


def test_macos_resource_fork_copies_are_named_as_such(audio_dir):
    (audio_dir / "._1001_DFA_ANG_XX.wav").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 100)
    reason = only_reason_for(load_cremad(audio_dir), "._1001_DFA_ANG_XX.wav")
    assert "macOS resource-fork" in reason


# --- tolerated differences

def test_stereo_44k_clip_loads_as_mono_16k_of_the_same_duration(audio_dir):
    t = np.arange(int(0.75 * 44100)) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 300 * t), np.cos(2 * np.pi * 300 * t)], 1) * 0.4
    path = audio_dir / "1003_TIE_NEU_XX.wav"
    soundfile.write(path, stereo, 44100)
    assert probe_audio(path) is None
    assert "1003_TIE_NEU_XX" in [c.clip_id for c in load_cremad(audio_dir).clips]
    y = load_audio(path, sr=16000)
    assert y.ndim == 1 and y.dtype == np.float32 and len(y) == 12000


def test_silent_clip_loads_but_the_check_reports_it(audio_dir):
    soundfile.write(audio_dir / "1003_TIE_NEU_XX.wav", np.zeros(4800), 16000)
    dither = np.random.default_rng(0).integers(-1, 2, 4800).astype(np.int16)  # +-1 LSB
    soundfile.write(audio_dir / "1003_TIE_SAD_XX.wav", dither, 16000, subtype="PCM_16")
    assert len(load_cremad(audio_dir).clips) == len(GOOD) + 2
    report = check_directory(audio_dir)
    assert [p.split("/")[-1] for p, _ in report.silent] == [
        "1003_TIE_NEU_XX.wav", "1003_TIE_SAD_XX.wav"]
    text = format_report(report)
    assert "Problems (2):" in text
    assert "1003_TIE_NEU_XX.wav is silent (peak -inf dBFS, below -80 dBFS)" in text
    assert "1003_TIE_SAD_XX.wav is silent (peak -90.3 dBFS" in text


def test_check_lists_broken_files_with_their_reasons(audio_dir):
    (audio_dir / "1076_MTI_SAD_XX.wav").write_bytes(b"")
    text = format_report(check_directory(audio_dir))
    assert "Problems (1):" in text and "1076_MTI_SAD_XX.wav is empty (0 bytes)" in text


# --- directories without clips

def test_directory_with_no_clips_names_it_and_the_expected_layout(tmp_path):
    (tmp_path / "AudioWAV").mkdir()
    with pytest.raises(NoClipsError, match=r"no clips found in .*AudioWAV; expected "
                                           r"ROOT/AudioWAV/<ActorID>_<Sentence>"):
        load_cremad(tmp_path)


def test_missing_directory_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does-not-exist does not exist.*AudioWAV"):
        load_cremad(tmp_path / "does-not-exist")


def test_directory_whose_every_file_is_broken_says_why(tmp_path):
    (tmp_path / "1001_DFA_ANG_XX.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("hello")
    with pytest.raises(NoClipsError, match=r"all 2 candidate files were skipped:.*"
                                           r"does not match.*is empty"):
        load_cremad(tmp_path)


def test_only_other_emotions_present_says_to_choose_other_emotions(tmp_path):
    write_clip(tmp_path / "1001_DFA_FEA_XX.wav")
    with pytest.raises(NoClipsError, match=r"no clips of emotions NEU,HAP,SAD,ANG .*1 clips "
                                           r"of other emotions"):
        load_cremad(tmp_path)
