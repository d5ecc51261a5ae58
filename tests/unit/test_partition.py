"""Client partitions: invariants over seeds and client counts, on a CREMA-D-shaped clip list."""
import numpy as np
import pandas as pd
import pytest

from tff_ser.corpus.records import CREMAD_SENTENCES, EMOTIONS_4, Clip
from tff_ser.partition import (PARTITIONERS, by_speaker, check_partition, class_balanced,
                               client_ids, describe_partition, dirichlet, get_partitioner, iid,
                               single_emotion, split_clips, split_speakers, subset)


def cremad_4class(n_speakers=91, n_male=48):
    """CREMA-D's 4-class layout without audio: 91 actors x 54 clips.

    Sentence IEO at LO/MD/HI for HAP/SAD/ANG, every other sentence (and IEO
    for NEU) at XX: 12 NEU + 3 x 14 emotional clips per actor.
    """
    clips = []
    for a in range(n_speakers):
        speaker = str(1001 + a)
        sex = "M" if a < n_male else "F"
        for emotion in EMOTIONS_4:
            for sentence in CREMAD_SENTENCES:
                levels = ("LO", "MD", "HI") if sentence == "IEO" and emotion != "NEU" else ("XX",)
                for level in levels:
                    clips.append(Clip(f"/crema/{speaker}_{sentence}_{emotion}_{level}.wav",
                                      speaker, emotion, sentence, level, "crema-d", sex))
    return clips


CLIPS = cremad_4class()
N = len(CLIPS)
EMOTION = np.array([c.emotion for c in CLIPS])
SPEAKER = np.array([c.speaker for c in CLIPS])


def _all_indices(partition):
    return np.sort(np.concatenate(list(partition.values())))


# (name, call) for every partitioner, at several k and seeds.
CASES = (
    [(f"iid k={k} seed={s}", lambda k=k, s=s: iid(CLIPS, k, seed=s))
     for k in (1, 2, 4, 7, 13) for s in (0, 1, 2)]
    + [(f"single_emotion k={k} seed={s}", lambda k=k, s=s: single_emotion(CLIPS, k, seed=s))
       for k in (4, 5, 9, 16) for s in (0, 1, 2)]
    + [(f"class_balanced k={k} seed={s}", lambda k=k, s=s: class_balanced(CLIPS, k, seed=s))
       for k in (1, 3, 4, 10) for s in (0, 1, 2)]
    + [(f"dirichlet k={k} a={a} seed={s}", lambda k=k, a=a, s=s: dirichlet(CLIPS, k, a, seed=s))
       for k in (2, 5, 10) for a in (0.3, 1.0, 100.0) for s in (0, 1)]
    + [("by_speaker", lambda: by_speaker(CLIPS))]
)


def test_fake_corpus_has_cremad_4class_shape():
    assert N == 91 * 54 == 4914
    assert len(set(SPEAKER)) == 91
    assert (EMOTION == "NEU").sum() == 91 * 12


@pytest.mark.parametrize("name, make", CASES, ids=[c[0] for c in CASES])
def test_every_clip_lands_in_exactly_one_client(name, make):
    partition = make()
    np.testing.assert_array_equal(_all_indices(partition), np.arange(N))
    assert all(len(idx) > 0 for idx in partition.values())
    assert all(np.array_equal(idx, np.sort(idx)) for idx in partition.values())
    check_partition(partition, N)


def test_partitions_have_k_clients_in_string_order():
    for partitioner in (iid, class_balanced, single_emotion):
        partition = partitioner(CLIPS, 12, seed=0)
        assert list(partition) == sorted(partition) == client_ids(12)
    assert list(iid(CLIPS, 150, seed=0)) == sorted(iid(CLIPS, 150, seed=0))
    assert len(dirichlet(CLIPS, 6, 1.0, seed=0)) == 6


def test_iid_client_sizes_differ_by_at_most_one_and_hold_every_emotion():
    partition = iid(CLIPS, 4, seed=0)
    sizes = [len(v) for v in partition.values()]
    assert max(sizes) - min(sizes) <= 1
    for idx in partition.values():
        assert set(EMOTION[idx]) == set(EMOTIONS_4)


@pytest.mark.parametrize("make", [
    lambda s: iid(CLIPS, 4, seed=s),
    lambda s: single_emotion(CLIPS, 8, seed=s),
    lambda s: class_balanced(CLIPS, 5, seed=s),
    lambda s: dirichlet(CLIPS, 5, 0.5, seed=s),
], ids=["iid", "single_emotion", "class_balanced", "dirichlet"])
def test_same_seed_same_partition_and_different_seed_different_partition(make):
    a, b, c = make(0), make(0), make(1)
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_single_emotion_with_four_clients_gives_one_client_per_emotion():
    partition = single_emotion(CLIPS, 4, seed=0)
    assert [set(EMOTION[idx]) for idx in partition.values()] == [{e} for e in EMOTIONS_4]
    assert [len(idx) for idx in partition.values()] == [91 * 12, 91 * 14, 91 * 14, 91 * 14]


@pytest.mark.parametrize("k", [4, 5, 8, 9, 30])
def test_single_emotion_clients_are_pure(k):
    partition = single_emotion(CLIPS, k, seed=3)
    assert len(partition) == k
    for idx in partition.values():
        assert len(set(EMOTION[idx])) == 1
    held = {e for idx in partition.values() for e in set(EMOTION[idx])}
    assert held == set(EMOTIONS_4)


def test_single_emotion_splits_an_emotion_into_near_equal_clients():
    partition = single_emotion(CLIPS, 9, seed=0)
    by_emotion = {}
    for idx in partition.values():
        by_emotion.setdefault(EMOTION[idx[0]], []).append(len(idx))
    for sizes in by_emotion.values():
        assert max(sizes) - min(sizes) <= 1
    # the extra clients go where clients are largest: no client above ceil(1274 / 2)
    assert max(len(idx) for idx in partition.values()) <= 637


def test_single_emotion_refuses_fewer_clients_than_emotions():
    with pytest.raises(ValueError, match="at least one client per emotion"):
        single_emotion(CLIPS, 3)


def test_single_emotion_counts_only_the_emotions_present():
    two = [c for c in CLIPS if c.emotion in ("SAD", "ANG")]
    partition = single_emotion(two, 2)
    assert [{c.emotion for c in subset(two, idx)} for idx in partition.values()] == [{"SAD"}, {"ANG"}]


@pytest.mark.parametrize("k", [1, 3, 4, 7, 10, 91])
@pytest.mark.parametrize("seed", [0, 1])
def test_class_balanced_per_client_class_counts_differ_by_at_most_one(k, seed):
    table = describe_partition(class_balanced(CLIPS, k, seed=seed), CLIPS)
    for emotion in EMOTIONS_4:
        assert table[emotion].max() - table[emotion].min() <= 1
    assert table["total"].max() - table["total"].min() <= 1


def _label_skew(partition):
    """Mean total-variation distance between each client's and the corpus' emotion mix."""
    overall = np.array([(EMOTION == e).mean() for e in EMOTIONS_4])
    distances = []
    for idx in partition.values():
        mix = np.array([(EMOTION[idx] == e).mean() for e in EMOTIONS_4])
        distances.append(0.5 * np.abs(mix - overall).sum())
    return float(np.mean(distances))


def test_dirichlet_small_alpha_is_more_skewed_than_large_alpha():
    for seed in range(3):
        skewed = _label_skew(dirichlet(CLIPS, 8, 0.1, seed=seed))
        mild = _label_skew(dirichlet(CLIPS, 8, 1.0, seed=seed))
        near_iid = _label_skew(dirichlet(CLIPS, 8, 1000.0, seed=seed))
        assert skewed > mild > near_iid
        assert skewed > 0.3 and near_iid < 0.05


def test_dirichlet_respects_min_size():
    for seed in range(3):
        partition = dirichlet(CLIPS, 10, 0.2, seed=seed, min_size=50)
        assert min(len(idx) for idx in partition.values()) >= 50


def test_dirichlet_gives_up_with_a_clear_error_when_clients_stay_empty():
    with pytest.raises(ValueError, match="larger alpha"):
        dirichlet(CLIPS, 40, 0.001, seed=0, max_tries=20)


def test_split_speakers_gives_73_train_and_18_validation_of_91():
    train, val = split_speakers(CLIPS, seed=0)
    assert (len(train), len(val)) == (73, 18)
    assert sorted(train + val) == sorted(set(SPEAKER))
    assert train == sorted(train) and val == sorted(val)


@pytest.mark.parametrize("seed", range(5))
def test_no_speaker_in_both_train_and_validation(seed):
    train, val = split_speakers(CLIPS, seed=seed)
    assert not set(train) & set(val)
    train_clips = _all_indices(by_speaker(CLIPS, train))
    val_clips = _all_indices(by_speaker(CLIPS, val))
    assert not set(train_clips) & set(val_clips)
    assert len(train_clips) + len(val_clips) == N


def test_split_speakers_stratified_keeps_both_sexes_on_each_side():
    sex = {c.speaker: c.sex for c in CLIPS}
    for seed in range(10):
        train, val = split_speakers(CLIPS, seed=seed)
        val_males = sum(sex[s] == "M" for s in val)
        assert abs(val_males - 18 * 48 / 91) < 1
        assert {sex[s] for s in val} == {sex[s] for s in train} == {"M", "F"}


def test_split_speakers_is_seeded():
    assert split_speakers(CLIPS, seed=4) == split_speakers(CLIPS, seed=4)
    assert split_speakers(CLIPS, seed=4)[1] != split_speakers(CLIPS, seed=5)[1]


def test_split_speakers_without_sex_draws_plainly_and_can_insist_on_it():
    anonymous = [Clip(c.path, c.speaker, c.emotion, c.sentence, c.intensity) for c in CLIPS]
    train, val = split_speakers(anonymous, seed=0)
    assert (len(train), len(val)) == (73, 18)
    with pytest.raises(ValueError, match="sex=None"):
        split_speakers(anonymous, stratify_by_sex=True)
    plain = split_speakers(CLIPS, seed=0, stratify_by_sex=False)
    assert (len(plain[0]), len(plain[1])) == (73, 18)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.001, -0.2])
def test_split_speakers_refuses_fractions_leaving_a_side_empty(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        split_speakers(CLIPS, val_fraction=fraction)


def test_by_speaker_gives_one_client_per_speaker_named_by_speaker_id():
    partition = by_speaker(CLIPS)
    assert list(partition) == sorted(set(SPEAKER))
    for speaker, idx in partition.items():
        assert set(SPEAKER[idx]) == {speaker} and len(idx) == 54


def test_by_speaker_restricted_to_given_speakers():
    partition = by_speaker(CLIPS, ["1003", "1001"])
    assert list(partition) == ["1001", "1003"]
    with pytest.raises(ValueError, match="have no clips"):
        by_speaker(CLIPS, ["1001", "9999"])
    with pytest.raises(ValueError, match="list of speaker ids"):
        by_speaker(CLIPS, "1001")


@pytest.mark.parametrize("call, message", [
    (lambda: iid(CLIPS, 0), "at least 1"),
    (lambda: iid(CLIPS, N + 1), "only 4914 clips"),
    (lambda: iid(CLIPS, 2.5), "integer"),
    (lambda: iid([], 2), "no clips"),
    (lambda: class_balanced(CLIPS, 0), "at least 1"),
    (lambda: dirichlet(CLIPS, 4, 0.0), "alpha"),
    (lambda: dirichlet(CLIPS, 4, -1.0), "alpha"),
    (lambda: dirichlet(CLIPS, 4, float("nan")), "alpha"),
    (lambda: dirichlet(CLIPS, 4, 1.0, min_size=2000), "need 8000 clips"),
    (lambda: class_balanced(CLIPS + [Clip("/x.wav", "1001", "FEA", "IEO")], 4), "FEA"),
])
def test_bad_arguments_are_refused_with_what_was_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_check_partition_catches_overlap_gaps_and_empty_clients():
    with pytest.raises(ValueError, match="more than once"):
        check_partition({"a": np.array([0, 1]), "b": np.array([1, 2])}, 3)
    with pytest.raises(ValueError, match="in no client"):
        check_partition({"a": np.array([0, 1])}, 3)
    with pytest.raises(ValueError, match="holds no clips"):
        check_partition({"a": np.array([0, 1, 2]), "b": np.array([], dtype=int)}, 3)
    check_partition({"a": np.array([0, 1])}, 3, require_cover=False)


def test_describe_partition_counts_clips_per_client_per_emotion():
    table = describe_partition(single_emotion(CLIPS, 4, seed=0), CLIPS)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == [*EMOTIONS_4, "total", "speakers"]
    np.testing.assert_array_equal(table[list(EMOTIONS_4)].to_numpy(),
                                  np.diag([91 * 12, 91 * 14, 91 * 14, 91 * 14]))
    assert (table["speakers"] == 91).all()
    assert table["total"].sum() == N


def test_split_clips_gives_each_client_its_clips():
    partition = by_speaker(CLIPS, ["1002"])
    held = split_clips(CLIPS, partition)["1002"]
    assert len(held) == 54 and {c.speaker for c in held} == {"1002"}


def test_registry_names_the_partitioners():
    assert set(PARTITIONERS) == {"iid", "single_emotion", "class_balanced", "dirichlet",
                                 "by_speaker"}
    assert get_partitioner("iid") is iid
    with pytest.raises(ValueError, match="known: iid"):
        get_partitioner("random")
