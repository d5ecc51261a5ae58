"""The generated corpus: CREMA-D's layout, real audio, determinism, emotion cues."""
import csv
import json
import os
import re
from collections import Counter, defaultdict

import librosa
import numpy as np
import pytest
import soundfile

from tff_ser.corpus.generate import GENERATED_NOTE, SIZES, generate_corpus
from tff_ser.corpus.synthesis.dsp import synthesize_clip, to_pcm16
from tff_ser.corpus.synthesis.plan import ClipSpec, clip_plan
from tff_ser.corpus.synthesis.speaker import draw_speakers, speaker_sexes
from tff_ser.corpus.records import CREMAD_SENTENCES, EMOTIONS_4, EMOTIONS_6

CREMAD_NAME = re.compile(r"^\d{4}_[A-Z]{3}_[A-Z]{3}_(LO|MD|HI|XX)\.wav$")

#: A tiny corpus for the tests that generate their own: 2 actors, 2 sentences.
TINY = dict(n_speakers=2, sentences=("IEO", "DFA"), progress=False)


def wav_files(corpus_dir):
    return sorted(os.listdir(os.path.join(corpus_dir, "AudioWAV")))


def read_bytes(corpus_dir):
    audio = os.path.join(corpus_dir, "AudioWAV")
    out = {}
    for name in sorted(os.listdir(audio)):
        with open(os.path.join(audio, name), "rb") as f:
            out[name] = f.read()
    return out


def fields(name):
    actor, sentence, emotion, level = name[:-4].split("_")
    return actor, sentence, emotion, level


def demographics(corpus_dir):
    with open(os.path.join(corpus_dir, "VideoDemographics.csv"), newline="") as f:
        return {row["ActorID"]: row for row in csv.DictReader(f)}


def load(corpus_dir, name):
    y, sr = soundfile.read(os.path.join(corpus_dir, "AudioWAV", name), dtype="float32")
    return y, sr


def median_f0(y, sr=16000):
    """Median YIN F0 over the loud (vowel) frames of a clip."""
    f0 = librosa.yin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0]
    return float(np.median(f0[rms > rms.max() * 10 ** (-12 / 20)]))


def rms_db(y):
    return float(20 * np.log10(np.sqrt(np.mean(np.square(y, dtype=np.float64)))))


# ---------------------------------------------------------------- layout


def test_every_file_is_named_like_a_cremad_clip(small_corpus_dir):
    names = wav_files(small_corpus_dir)
    assert names and all(CREMAD_NAME.match(n) for n in names)
    actors = sorted({fields(n)[0] for n in names})
    assert actors == [str(a) for a in range(1001, 1013)]


def test_each_small_speaker_has_ieo_at_levels_and_other_sentences_at_xx(small_corpus_dir):
    per_actor = defaultdict(list)
    for name in wav_files(small_corpus_dir):
        per_actor[fields(name)[0]].append(fields(name)[1:])
    other_sentences = [s for s in SIZES["small"]["sentences"] if s != "IEO"]
    for actor, clips in per_actor.items():
        # IEO: NEU once at XX, every other emotion at LO/MD/HI; the rest once at XX
        assert len(clips) == 1 + 3 * 3 + 4 * len(other_sentences) == 22
        ieo = Counter((e, lv) for s, e, lv in clips if s == "IEO")
        assert ieo == Counter({("NEU", "XX"): 1, **{(e, lv): 1 for e in ("HAP", "SAD", "ANG")
                                                     for lv in ("LO", "MD", "HI")}})
        assert all(lv == "XX" for s, _, lv in clips if s != "IEO")
        assert Counter(e for _, e, _ in clips) == {"NEU": 4, "HAP": 6, "SAD": 6, "ANG": 6}


def test_full_plan_has_54_clips_per_speaker_and_4914_in_all():
    plan = clip_plan(range(1001, 1092), CREMAD_SENTENCES, EMOTIONS_4)
    assert len(plan) == 4914
    assert set(Counter(c.actor for c in plan).values()) == {54}
    assert len({c.filename for c in plan}) == 4914
    # all six emotions: 82 per speaker, as CREMA-D's 7,442 clips / 91 actors
    assert len(clip_plan([1001], CREMAD_SENTENCES, EMOTIONS_6)) == 82


def test_full_size_has_cremads_48_male_and_43_female_actors():
    assert Counter(speaker_sexes(91, seed=0)) == {"Male": 48, "Female": 43}


def test_demographics_list_every_actor_with_cremad_columns(small_corpus_dir):
    rows = demographics(small_corpus_dir)
    assert sorted(rows) == [str(a) for a in range(1001, 1013)]
    with open(os.path.join(small_corpus_dir, "VideoDemographics.csv")) as f:
        assert f.readline().strip() == "ActorID,Age,Sex,Race,Ethnicity"
    assert Counter(r["Sex"] for r in rows.values()) == {"Male": 6, "Female": 6}
    assert all(20 <= int(r["Age"]) <= 74 for r in rows.values())


def test_generated_json_marks_the_corpus_and_the_loader_reports_it_as_generated(
        small_corpus_dir):
    from tff_ser.corpus.cremad import load_cremad
    with open(os.path.join(small_corpus_dir, "GENERATED.json")) as f:
        manifest = json.load(f)
    assert manifest["note"] == GENERATED_NOTE and "never report as CREMA-D" in GENERATED_NOTE
    assert manifest["parameters"]["seed"] == 0 and manifest["parameters"]["size"] == "small"
    assert manifest["counts"]["n_clips"] == len(wav_files(small_corpus_dir)) == 264
    corpus = load_cremad(small_corpus_dir)
    assert len(corpus.clips) == 264 and {c.corpus for c in corpus.clips} == {"generated"}
    assert {c.sex for c in corpus.clips} == {"M", "F"}


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_and_another_seed_different_audio(tmp_path):
    a = generate_corpus(tmp_path / "a", seed=3, n_jobs=1, **TINY)
    generate_corpus(tmp_path / "b", seed=3, n_jobs=1, **TINY)
    generate_corpus(tmp_path / "c", seed=4, n_jobs=1, **TINY)
    first, again, other = (read_bytes(tmp_path / d) for d in "abc")
    assert a.n_clips == len(first) == 2 * (10 + 4)
    assert first == again
    assert sorted(other) == sorted(first)
    assert all(other[n] != first[n] for n in first)
    with open(tmp_path / "a" / "GENERATED.json") as f, open(tmp_path / "b" / "GENERATED.json") as g:
        assert f.read() == g.read()


def test_parallel_generation_writes_the_same_bytes_as_serial(tmp_path):
    generate_corpus(tmp_path / "serial", n_jobs=1, **TINY)
    generate_corpus(tmp_path / "parallel", n_jobs=2, **TINY)
    assert read_bytes(tmp_path / "serial") == read_bytes(tmp_path / "parallel")


def test_two_processes_generating_the_same_corpus_at_once_both_get_it(tmp_path):
    # two experiments started together on a fresh clone: the second waits for
    # the first instead of finding WAVs without GENERATED.json ("a real corpus")
    import subprocess
    import sys
    code = ("import sys; from tff_ser.corpus.generate import generate_corpus; "
            f"r = generate_corpus(sys.argv[1], n_jobs=1, **{TINY!r}); "
            "print('already' if r.already_generated else 'wrote')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "corpus")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-800:] for _, err in outs]
    assert sorted(out.strip() for out, _ in outs) == ["already", "wrote"]
    generate_corpus(tmp_path / "alone", n_jobs=1, **TINY)
    assert read_bytes(tmp_path / "corpus") == read_bytes(tmp_path / "alone")


def test_any_clip_can_be_regenerated_on_its_own(small_corpus_dir):
    speakers = {s.actor: s for s in draw_speakers(SIZES["small"]["n_speakers"], seed=0)}
    for name in ("1003_IEO_HAP_HI.wav", "1010_TSI_NEU_XX.wav"):
        spec = ClipSpec(*[int(v) if i == 0 else v for i, v in enumerate(fields(name))])
        pcm = to_pcm16(synthesize_clip(speakers[spec.actor], spec, seed=0))
        on_disk, _ = soundfile.read(os.path.join(small_corpus_dir, "AudioWAV", name),
                                    dtype="int16")
        np.testing.assert_array_equal(pcm, on_disk)


def test_an_identical_corpus_is_not_generated_twice(small_corpus_dir):
    before = os.path.getmtime(os.path.join(small_corpus_dir, "GENERATED.json"))
    report = generate_corpus(small_corpus_dir, size="small", seed=0, progress=False)
    assert report.already_generated and report.n_clips == 264
    assert report.total_audio_s > 264 * 1.5
    assert os.path.getmtime(os.path.join(small_corpus_dir, "GENERATED.json")) == before


def test_changed_parameters_regenerate_and_leave_no_stale_clips(tmp_path):
    out = tmp_path / "corpus"
    generate_corpus(out, emotions="all", n_jobs=1, **TINY)
    assert {fields(n)[2] for n in wav_files(out)} == {"NEU", "HAP", "SAD", "ANG", "FEA", "DIS"}
    report = generate_corpus(out, n_jobs=1, **TINY)
    assert not report.already_generated
    assert {fields(n)[2] for n in wav_files(out)} == set(EMOTIONS_4)
    assert len(wav_files(out)) == report.n_clips == 28


# ---------------------------------------------------------------- audio


def test_clips_are_16k_mono_16bit_nonsilent_and_2_to_3_seconds_long(small_corpus_dir):
    durations = []
    for name in wav_files(small_corpus_dir):
        info = soundfile.info(os.path.join(small_corpus_dir, "AudioWAV", name))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.5 <= info.duration <= 3.5, name
        durations.append(info.duration)
    assert 1.8 < np.mean(durations) < 3.0
    for name in wav_files(small_corpus_dir)[::11]:
        y, _ = load(small_corpus_dir, name)
        assert np.abs(y).max() > 0.05 and rms_db(y) > -45, name
        # leading silence: the first 100 ms are far quieter than the loudest 100 ms
        loudest = max(rms_db(y[i:i + 1600]) for i in range(0, len(y) - 1600, 400))
        assert rms_db(y[:1600]) < loudest - 12, name


def test_male_speakers_neutral_f0_is_lower_than_female_speakers(small_corpus_dir):
    sex = {a: r["Sex"] for a, r in demographics(small_corpus_dir).items()}
    f0 = defaultdict(list)
    for name in wav_files(small_corpus_dir):
        actor, _, emotion, _ = fields(name)
        if emotion == "NEU":
            f0[sex[actor]].append(median_f0(load(small_corpus_dir, name)[0]))
    assert 75 < np.median(f0["Male"]) < 170 and 150 < np.median(f0["Female"]) < 290
    assert max(np.median(f0["Male"][i:i + 4]) for i in range(0, len(f0["Male"]), 4)) \
        < min(np.median(f0["Female"][i:i + 4]) for i in range(0, len(f0["Female"]), 4))


def test_angry_clips_are_louder_and_higher_pitched_than_sad_ones_of_the_same_speaker(
        small_corpus_dir):
    level, pitch = defaultdict(dict), defaultdict(dict)
    for name in wav_files(small_corpus_dir):
        actor, sentence, emotion, lv = fields(name)
        if emotion in ("ANG", "SAD") and lv in ("XX", "MD"):
            y, _ = load(small_corpus_dir, name)
            level[actor].setdefault(emotion, []).append(rms_db(y))
            pitch[actor].setdefault(emotion, []).append(median_f0(y))
    db_gap = [np.mean(v["ANG"]) - np.mean(v["SAD"]) for v in level.values()]
    f0_ratio = [np.mean(v["ANG"]) / np.mean(v["SAD"]) for v in pitch.values()]
    # GENERATOR-NOTES: anger +6..+9 dB and +30..60 % F0, sadness -3..-5 dB and -5..-15 %,
    # scaled by each actor's skill
    assert np.mean(db_gap) > 6 and np.mean(f0_ratio) > 1.3
    assert sum(g > 0 for g in db_gap) >= 10 and sum(r > 1 for r in f0_ratio) >= 10


def test_ieo_at_level_hi_is_more_intense_than_at_lo(small_corpus_dir):
    gaps = []
    for actor in demographics(small_corpus_dir):
        y_hi, _ = load(small_corpus_dir, f"{actor}_IEO_ANG_HI.wav")
        y_lo, _ = load(small_corpus_dir, f"{actor}_IEO_ANG_LO.wav")
        gaps.append(rms_db(y_hi) - rms_db(y_lo))
    assert np.mean(gaps) > 2


def test_fear_is_higher_and_disgust_lower_pitched_than_neutral():
    speakers = draw_speakers(6, seed=0)
    ratio = defaultdict(list)
    for s in speakers:
        for sentence in ("DFA", "TSI"):
            neutral = median_f0(synthesize_clip(s, ClipSpec(s.actor, sentence, "NEU", "XX"))
                                .astype(np.float32))
            for emotion in ("FEA", "DIS"):
                y = synthesize_clip(s, ClipSpec(s.actor, sentence, emotion, "XX"))
                ratio[emotion].append(median_f0(y.astype(np.float32)) / neutral)
    assert np.mean(ratio["FEA"]) > 1.2 and np.mean(ratio["DIS"]) < 1.0


def speech_seconds(y, sr=16000):
    """From the first to the last 10-ms frame within 25 dB of the loudest."""
    frames = y[: len(y) // 160 * 160].reshape(-1, 160)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(level > level.max() - 25)
    return (active[-1] - active[0] + 1) * 160 / sr


def test_each_sentence_has_its_own_length_across_speakers(small_corpus_dir):
    # fixed phone sequences: "The surface is slick" (5 syllables) is shorter than
    # "I'm on my way to the meeting" (8) for every speaker
    ratios = []
    for actor in demographics(small_corpus_dir):
        short, long_ = (speech_seconds(load(small_corpus_dir, f"{actor}_{s}_NEU_XX.wav")[0])
                        for s in ("TSI", "IOM"))
        ratios.append(long_ / short)
    assert np.mean(ratios) > 1.15 and sum(r > 1 for r in ratios) >= 11


# ---------------------------------------------------------------- bad input


def test_refuses_to_generate_into_a_directory_holding_a_real_corpus(tmp_path):
    audio = tmp_path / "AudioWAV"
    audio.mkdir()
    soundfile.write(audio / "1001_DFA_ANG_XX.wav", np.zeros(1600, np.int16), 16000)
    with pytest.raises(FileExistsError, match="no GENERATED.json"):
        generate_corpus(tmp_path, **TINY)


@pytest.mark.parametrize("kwargs, message", [
    (dict(size="medium"), "size must be one of"),
    (dict(emotions=("NEU", "XYZ")), "emotions must be distinct codes"),
    (dict(emotions="four"), "emotions must be 'all'"),
    (dict(sentences=("IEO", "ABC")), "CREMA-D sentence codes"),
    (dict(n_speakers=0), "n_speakers must be an integer from 1"),
    (dict(seed=-1), "seed must be a non-negative integer"),
    (dict(sr=4000), "sr must be an integer sample rate"),
    (dict(n_jobs=0), "n_jobs must be None, -1 or a positive integer"),
])
def test_bad_arguments_are_refused_with_a_message_that_says_what_is_wrong(
        tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_corpus(tmp_path / "x", progress=False, **kwargs)
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- calibration


@pytest.mark.slow
def test_full_size_corpus_is_as_hard_as_cremad_for_an_mlp_on_unseen_speakers(tmp_path):
    from tff_ser.experiments.calibrate import calibration_accuracy
    report = generate_corpus(tmp_path / "full", progress=False)
    assert report.n_clips == 4914
    result = calibration_accuracy(tmp_path / "full", seed=0, cache_dir=tmp_path / "cache")
    assert (result["n_train_speakers"], result["n_val_speakers"]) == (73, 18)
    assert 0.55 <= result["accuracy"] <= 0.85, result
    assert min(result["per_class_recall"].values()) > 0.25, result
    # speaker identity is in the audio: far above 1/91 on sentences not trained on
    assert result["speaker_id"]["accuracy"] > 10 * result["speaker_id"]["chance"], result
