"""CREMA-D loader and the data-check report over CREMA-D-layout directories."""
import json
import os

import numpy as np
import pytest
import soundfile

from tff_ser.corpus.check import check_directory, detect_layout, format_report
from tff_ser.corpus.cremad import (NoClipsError, load_cremad, parse_cremad_name,
                                   read_demographics, resolve_emotions)
from tff_ser.corpus.records import EMOTIONS_4, EMOTIONS_6

#: 2 actors x 6 emotions on sentence DFA, plus IEO at three levels for 1002.
NAMES = ([f"{actor}_DFA_{emo}_XX" for actor in (1001, 1002) for emo in EMOTIONS_6]
         + ["1002_IEO_ANG_HI", "1002_IEO_ANG_LO", "1002_IEO_SAD_MD"])


def write_clip(path, seconds=0.3, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(len(t))
    soundfile.write(path, y.astype(np.float32), sr, subtype="PCM_16")


def make_cremad(root, names=NAMES, demographics=True):
    audio = root / "AudioWAV"
    audio.mkdir(parents=True)
    for i, name in enumerate(names):
        write_clip(audio / f"{name}.wav", seconds=0.3 + 0.1 * (i % 3), seed=i)
    if demographics:
        (root / "VideoDemographics.csv").write_text(
            "ActorID,Age,Sex,Race,Ethnicity\n"
            "1001,51,Male,Caucasian,Not Hispanic\n"
            "1002,21,Female,Caucasian,Not Hispanic\n")
    return root


@pytest.fixture
def cremad(tmp_path):
    return make_cremad(tmp_path / "CREMA-D")


def test_file_name_gives_actor_sentence_emotion_and_level(cremad):
    load = load_cremad(cremad, emotions="all")
    clip = {c.clip_id: c for c in load.clips}["1002_IEO_ANG_HI"]
    assert (clip.speaker, clip.sentence, clip.emotion, clip.intensity) == (
        "1002", "IEO", "ANG", "HI")
    # a two-actor folder in CREMA-D layout is not known to be CREMA-D
    assert clip.corpus == "crema-d-layout"
    assert load_cremad(cremad, corpus="my-cremad").clips[0].corpus == "my-cremad"
    assert os.path.isabs(clip.path) and clip.path.endswith("AudioWAV/1002_IEO_ANG_HI.wav")


def test_four_emotion_load_keeps_neu_hap_sad_ang_and_counts_the_rest_as_filtered(cremad):
    load = load_cremad(cremad)
    assert load.emotions == EMOTIONS_4
    assert {c.emotion for c in load.clips} == set(EMOTIONS_4)
    assert len(load.clips) == 2 * 4 + 3
    assert load.filtered == 2 * 2  # FEA and DIS of both actors
    assert load.skipped == []
    assert "filtered (emotion not in NEU,HAP,SAD,ANG): 4" in load.summary()


def test_all_loads_the_six_crema_d_emotions(cremad):
    load = load_cremad(cremad, emotions="all")
    assert {c.emotion for c in load.clips} == set(EMOTIONS_6)
    assert len(load.clips) == len(NAMES) and load.filtered == 0


def test_clips_are_sorted_by_clip_id(cremad):
    ids = [c.clip_id for c in load_cremad(cremad, emotions="all").clips]
    assert ids == sorted(ids) == sorted(NAMES)


def test_root_or_its_audiowav_directory_give_the_same_clips(cremad):
    via_root = load_cremad(cremad, emotions="all").clips
    via_audio = load_cremad(cremad / "AudioWAV", emotions="all").clips
    assert via_root == via_audio
    assert {c.sex for c in via_audio} == {"M", "F"}  # demographics one level up


def test_demographics_csv_sets_sex_per_actor(cremad):
    sex = {c.speaker: c.sex for c in load_cremad(cremad).clips}
    assert sex == {"1001": "M", "1002": "F"}


def test_without_demographics_sex_is_unknown(tmp_path):
    root = make_cremad(tmp_path / "c", demographics=False)
    assert {c.sex for c in load_cremad(root).clips} == {None}


def test_demographics_without_a_sex_column_is_rejected_naming_the_columns(tmp_path):
    path = tmp_path / "VideoDemographics.csv"
    path.write_text("ActorID,Age\n1001,51\n")
    with pytest.raises(ValueError, match=r"expected at least ActorID and Sex"):
        read_demographics(str(path))


@pytest.mark.parametrize("pass_audio_dir", [False, True])
def test_generated_marker_labels_every_clip_generated(cremad, pass_audio_dir):
    (cremad / "GENERATED.json").write_text(json.dumps({"generator": "test"}))
    root = cremad / "AudioWAV" if pass_audio_dir else cremad
    load = load_cremad(root, corpus="crema-d")
    assert load.corpus == "generated"
    assert {c.corpus for c in load.clips} == {"generated"}
    assert load.summary().startswith("generated:")


def test_flat_directory_not_named_audiowav_is_its_own_root(tmp_path):
    flat = tmp_path / "wavs"
    flat.mkdir()
    (tmp_path / "GENERATED.json").write_text("{}")  # belongs to something else
    write_clip(flat / "1001_DFA_NEU_XX.wav")
    load = load_cremad(flat)
    assert [c.clip_id for c in load.clips] == ["1001_DFA_NEU_XX"]
    assert load.corpus == "crema-d-layout"


@pytest.mark.parametrize("name, reason", [
    ("1001_DFA_ANG.wav", "does not match ActorID_Sentence_Emotion_Level"),
    ("abcd_DFA_ANG_XX.wav", "actor id 'abcd' is not numeric"),
    ("1001_XYZ_ANG_XX.wav", "sentence code 'XYZ' is not one of"),
    ("1001_DFA_ANG_ZZ.wav", "level code 'ZZ' is not one of"),
    ("1001_DFA_JOY_XX.wav", "emotion code 'JOY' is unknown"),
    ("._1001_DFA_ANG_XX.wav", "macOS resource-fork"),
])
def test_parse_reports_what_is_wrong_with_a_name(name, reason):
    fields, why = parse_cremad_name(name)
    assert fields is None and reason in why


def test_emotion_sets_are_validated():
    assert resolve_emotions("4") == EMOTIONS_4
    assert resolve_emotions(["ANG", "NEU"]) == ("ANG", "NEU")
    with pytest.raises(ValueError, match="JOY"):
        resolve_emotions(["NEU", "JOY"])
    with pytest.raises(ValueError, match="not understood"):
        resolve_emotions("five")
    with pytest.raises(ValueError, match="repeats"):
        resolve_emotions(["NEU", "NEU"])


def test_probe_false_trusts_the_directory(cremad):
    (cremad / "AudioWAV" / "1001_ITS_NEU_XX.wav").write_bytes(b"")
    assert len(load_cremad(cremad, probe=False).clips) == 12
    assert len(load_cremad(cremad, probe=True).clips) == 11


def test_summary_states_clip_and_speaker_counts(cremad):
    text = load_cremad(cremad).summary()
    assert f"crema-d-layout: 11 clips from 2 speakers in {cremad / 'AudioWAV'}" in text
    assert "per emotion: NEU 2, HAP 2, SAD 3, ANG 4" in text
    assert "no problems found" in text


def test_detect_layout_recognises_crema_d_root_and_audio_dir(cremad):
    assert detect_layout(cremad) == "crema-d"
    assert detect_layout(cremad / "AudioWAV") == "crema-d"


def test_detect_layout_of_an_unrelated_directory_describes_both_layouts(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NoClipsError, match="CREMA-D: ROOT/AudioWAV.*IEMOCAP: "):
        detect_layout(tmp_path)


def test_check_counts_speakers_emotions_levels_sex_and_durations(cremad):
    report = check_directory(cremad)
    assert report.layout == "crema-d" and report.corpus == "crema-d-layout"
    assert report.n_clips == len(NAMES)
    assert report.clips_per_speaker == {"1001": 6, "1002": 9}
    assert report.clips_per_emotion["ANG"] == 4
    assert report.clips_per_level == {"LO": 1, "MD": 1, "HI": 1, "XX": 12}
    assert report.clips_per_sex == {"F": 9, "M": 6}
    assert report.speakers_per_sex == {"F": 1, "M": 1}
    assert min(report.durations) == pytest.approx(0.3)
    assert max(report.durations) == pytest.approx(0.5)
    assert report.sample_rates == {16000: len(NAMES)}
    assert report.problems == []


def test_check_report_text_has_the_per_speaker_table_and_stats(cremad):
    text = format_report(check_directory(cremad))
    assert "Layout: crema-d" in text
    assert "Speakers: 2; clips per speaker min 6, median 7.5, max 9" in text
    assert "Clips per level: LO 1, MD 1, HI 1, XX 12" in text
    assert "Sex: F 1 speakers / 9 clips, M 1 speakers / 6 clips" in text
    assert "Duration (s): min 0.30, mean" in text
    assert "Sample rates: 16000 Hz (15 clips)" in text
    assert "Channels: 1 (15 clips)" in text
    assert "total 0.1 min" in text
    table = text.split("Clips per speaker:")[1].splitlines()
    assert table[1].split() == ["speaker", *EMOTIONS_6, "total"]
    assert table[3].split() == ["1002", "1", "1", "2", "3", "1", "1", "9"]
    assert "Problems: none" in text


def test_check_of_generated_corpus_warns_it_is_not_crema_d(cremad):
    (cremad / "GENERATED.json").write_text("{}")
    text = format_report(check_directory(cremad))
    assert "corpus name on clips: generated" in text
    assert "never report their numbers as CREMA-D" in text


def test_check_says_which_rate_features_use_and_that_other_rates_are_resampled(tmp_path):
    audio = tmp_path / "mine" / "AudioWAV"
    audio.mkdir(parents=True)
    write_clip(audio / "1001_DFA_NEU_XX.wav", sr=22050)
    write_clip(audio / "1002_DFA_ANG_XX.wav", sr=16000)
    text = format_report(check_directory(tmp_path / "mine"))
    assert "Features use 16000 Hz: clips at 22050 Hz are resampled to 16000 Hz" in text
    audio16 = tmp_path / "sixteen" / "AudioWAV"
    audio16.mkdir(parents=True)
    write_clip(audio16 / "1001_DFA_NEU_XX.wav")
    assert "no resampling" in format_report(check_directory(tmp_path / "sixteen"))
