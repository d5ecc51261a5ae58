"""IEMOCAP loader: labels, excited->happy merge, improvised subset, speaker ids."""
import numpy as np
import pytest
import soundfile

from tff_ser.corpus.check import check_directory, detect_layout, format_report
from tff_ser.corpus.cremad import NoClipsError
from tff_ser.corpus.iemocap import (load_iemocap, parse_emo_evaluation, speaker_of)

#: {session: {dialog: {utterance: label}}} — both actors speak in each dialog.
LABELS = {
    1: {"Ses01F_impro01": {"Ses01F_impro01_F000": "neu", "Ses01F_impro01_M000": "ang",
                           "Ses01F_impro01_F001": "exc", "Ses01F_impro01_M001": "fru",
                           "Ses01F_impro01_F002": "hap", "Ses01F_impro01_M002": "xxx"},
        "Ses01M_script01_1": {"Ses01M_script01_1_F000": "sad",
                              "Ses01M_script01_1_M000": "neu",
                              "Ses01M_script01_1_M001": "fea"}},
    2: {"Ses02F_impro02": {"Ses02F_impro02_F000": "sad", "Ses02F_impro02_M000": "exc"}},
}


def emo_evaluation_text(labels):
    """An EmoEvaluation file as IEMOCAP writes it, evaluator lines included."""
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for i, (utt, label) in enumerate(labels.items()):
        start = 1.5 + 3 * i
        lines += [f"[{start:.4f} - {start + 2.1:.4f}]\t{utt}\t{label}\t[2.5000, 3.0000, 2.5000]",
                  "C-E1:\tNeutral state;\t()",
                  "C-E2:\tAnger;\t()",
                  "A-E1:\tval 3; act 2; dom  2;\t()",
                  ""]
    return "\n".join(lines) + "\n"


def make_iemocap(base, labels=LABELS):
    release = base / "IEMOCAP_full_release"
    for session, dialogs in labels.items():
        sdir = release / f"Session{session}"
        evaluation = sdir / "dialog" / "EmoEvaluation"
        evaluation.mkdir(parents=True)
        (evaluation / "Categorical").mkdir()  # real releases hold subfolders here
        for dialog, utterances in dialogs.items():
            (evaluation / f"{dialog}.txt").write_text(emo_evaluation_text(utterances))
            wav_dir = sdir / "sentences" / "wav" / dialog
            wav_dir.mkdir(parents=True)
            for i, utt in enumerate(utterances):
                t = np.arange(4800 + 800 * i) / 16000
                soundfile.write(wav_dir / f"{utt}.wav",
                                (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32),
                                16000, subtype="PCM_16")
    return release


@pytest.fixture
def iemocap(tmp_path):
    return make_iemocap(tmp_path)


def by_id(load):
    return {c.clip_id: c for c in load.clips}


def test_four_classes_with_excited_merged_into_happy(iemocap):
    clips = by_id(load_iemocap(iemocap))
    assert {k: c.emotion for k, c in clips.items()} == {
        "Ses01F_impro01_F000": "NEU", "Ses01F_impro01_M000": "ANG",
        "Ses01F_impro01_F001": "HAP", "Ses01F_impro01_F002": "HAP",
        "Ses01M_script01_1_F000": "SAD", "Ses01M_script01_1_M000": "NEU",
        "Ses02F_impro02_F000": "SAD", "Ses02F_impro02_M000": "HAP"}


def test_frustrated_no_agreement_and_fear_are_filtered_not_problems(iemocap):
    load = load_iemocap(iemocap)
    assert load.filtered == 3  # fru, xxx, fea
    assert load.skipped == []


def test_without_merge_excited_exc_is_left_out(iemocap):
    load = load_iemocap(iemocap, merge_excited=False)
    clips = by_id(load)
    assert "Ses01F_impro01_F001" not in clips and "Ses02F_impro02_M000" not in clips
    assert [c.emotion for c in clips.values()].count("HAP") == 1
    assert load.filtered == 5


def test_improvised_only_keeps_impro_dialogs(iemocap):
    clips = load_iemocap(iemocap, improvised_only=True).clips
    assert {c.sentence for c in clips} == {"Ses01F_impro01", "Ses02F_impro02"}


def test_all_emotions_maps_fear_to_fea(iemocap):
    clips = by_id(load_iemocap(iemocap, emotions="all"))
    assert clips["Ses01M_script01_1_M001"].emotion == "FEA"


def test_speaker_is_session_plus_the_utterance_speakers_gender(iemocap):
    clips = by_id(load_iemocap(iemocap))
    male_in_female_dialog = clips["Ses01F_impro01_M000"]
    assert (male_in_female_dialog.speaker, male_in_female_dialog.sex) == ("Ses01M", "M")
    female_in_male_dialog = clips["Ses01M_script01_1_F000"]
    assert (female_in_male_dialog.speaker, female_in_male_dialog.sex) == ("Ses01F", "F")
    assert {c.speaker for c in clips.values()} == {"Ses01F", "Ses01M", "Ses02F", "Ses02M"}


def test_clip_fields_follow_the_shared_record(iemocap):
    clip = by_id(load_iemocap(iemocap))["Ses01M_script01_1_M000"]
    assert clip.sentence == "Ses01M_script01_1"
    assert clip.intensity == "XX" and clip.corpus == "iemocap"
    assert clip.path.endswith("Session1/sentences/wav/Ses01M_script01_1/"
                              "Ses01M_script01_1_M000.wav")


def test_speaker_of_script_utterances_with_letter_suffixes():
    assert speaker_of("Ses05M_script01_1b_F012") == ("Ses05F", "F")
    assert speaker_of("Ses03M_impro05a_M020") == ("Ses03M", "M")
    assert speaker_of("impro01_F000") is None


def test_release_dir_or_its_parent_load_the_same(iemocap):
    assert load_iemocap(iemocap).clips == load_iemocap(iemocap.parent).clips


def test_parse_emo_evaluation_reads_only_the_summary_lines(iemocap):
    path = iemocap / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    assert parse_emo_evaluation(str(path)) == LABELS[1]["Ses01F_impro01"]


def test_wav_without_a_label_is_skipped_with_the_label_file_named(iemocap):
    wav_dir = iemocap / "Session2" / "sentences" / "wav" / "Ses02F_impro02"
    soundfile.write(wav_dir / "Ses02F_impro02_F001.wav", np.zeros(1600), 16000)
    load = load_iemocap(iemocap)
    (path, reason), = load.skipped
    assert path.endswith("Ses02F_impro02_F001.wav")
    assert "no label for Ses02F_impro02_F001" in reason and "Ses02F_impro02.txt" in reason


def test_labelled_utterance_without_wav_is_listed_missing(iemocap):
    (iemocap / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
     / "Ses01F_impro01_M000.wav").unlink()
    (path, reason), = load_iemocap(iemocap).skipped
    assert "Ses01F_impro01_M000 is labelled in" in reason and "wav file is missing" in reason


def test_unknown_label_is_skipped_not_filtered(tmp_path):
    labels = {1: {"Ses01F_impro01": {"Ses01F_impro01_F000": "neu",
                                     "Ses01F_impro01_M000": "joy"}}}
    load = load_iemocap(make_iemocap(tmp_path, labels))
    (path, reason), = load.skipped
    assert "label 'joy'" in reason and "is not an IEMOCAP label" in reason
    assert load.filtered == 0


def test_directory_without_sessions_is_a_clear_error(tmp_path):
    (tmp_path / "IEMOCAP_full_release").mkdir()
    with pytest.raises(NoClipsError, match="no SessionN directories.*EmoEvaluation"):
        load_iemocap(tmp_path)


def test_detect_layout_and_check_on_iemocap(iemocap):
    assert detect_layout(iemocap) == detect_layout(iemocap.parent) == "iemocap"
    report = check_directory(iemocap.parent, emotions="4")
    assert report.layout == "iemocap"
    assert report.clips_per_speaker == {"Ses01F": 4, "Ses01M": 2, "Ses02F": 1, "Ses02M": 1}
    assert report.clips_per_sex == {"F": 5, "M": 3}
    assert report.clips_per_level == {"XX": 8}
    assert "Speakers: 4" in format_report(report)
