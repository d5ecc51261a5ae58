"""Speaker-independent folds: every speaker held out once, never trained on in its fold."""

import pytest

import tff_ser
from tff_ser.crossval import cross_validate, speaker_folds
from tff_ser.task import load_features


@pytest.fixture(scope="module")
def features(small_corpus_dir):
    return load_features("mlp", size="small", progress=False)[1]


def test_every_speaker_is_held_out_in_exactly_one_fold_with_both_sexes(features):
    speakers = sorted({c.speaker for c in features.clips})
    folds = speaker_folds(features.clips, 3, seed=0)
    assert sorted(s for f in folds for s in f) == speakers
    assert {len(f) for f in folds} == {len(speakers) // 3}
    sex = {c.speaker: c.sex for c in features.clips}
    assert all(len({sex[s] for s in f}) == 2 for f in folds)
    assert speaker_folds(features.clips, 3, seed=1) != folds  # the fold seed deals anew
    assert speaker_folds(features.clips, "loso") == [[s] for s in speakers]
    with pytest.raises(ValueError, match="2..12"):
        speaker_folds(features.clips, 13)


def test_three_folds_score_every_clip_once_by_a_model_that_never_heard_its_speaker(
        features, tmp_path):
    cfg = tff_ser.FederatedConfig(rounds=1, local_epochs=1, batch_size=16, seed=0,
                                  eval_every=0)
    cv = cross_validate(features, "mlp", cfg, folds=3, progress=False,
                        out_dir=str(tmp_path / "cv"))
    preds = cv.predictions
    assert sorted(preds["clip_id"]) == sorted(c.clip_id for c in features.clips)
    assert cv.pooled["n"] == len(features.clips)
    for i, result in enumerate(cv.results):
        held = set(cv.folds[i])
        assert set(preds[preds["fold"] == i]["speaker"]) == held
        # training clients are the other speakers, one client each
        assert result.config["task"]["train_speakers"] == 12 - len(held)
        assert held.isdisjoint(result.config["task"].get("train_speaker_ids", []))
    assert list(cv.per_fold["fold"]) == [0, 1, 2]
    summary = cv.summary()
    assert list(summary["metric"]) == ["accuracy", "uar", "f1_macro"]
    assert (tmp_path / "cv" / "predictions.csv").is_file()
    assert (tmp_path / "cv" / "fold_2" / "result.json").is_file()
    # pooled accuracy = fraction of clips predicted right, over every fold
    assert cv.pooled["accuracy"] == pytest.approx((preds["true"] == preds["predicted"]).mean())


def test_loso_from_the_command_line(small_corpus_dir, tmp_path, capsys):
    from tff_ser import cli
    code = cli.main(["train", "--model", "mlp", "--size", "small", "--rounds", "1",
                     "--local-epochs", "1", "--loso", "--max-speakers", "4",
                     "--out", str(tmp_path / "loso")])
    assert code == 0
    out = capsys.readouterr().out
    assert "4 folds" in out and "pooled" in out
    folds = (tmp_path / "loso" / "folds.csv").read_text().splitlines()
    assert len(folds) == 1 + 4


def test_folds_take_a_model_of_your_own_and_build_each_fold_like_the_single_split(features):
    """One builder (task_for_speakers) serves the single split and every fold."""
    import keras
    from tff_ser.models import KerasModel
    from tff_ser.task import task_for_speakers, task_from_features

    def small(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(8, activation="relu"),
                                 keras.layers.Dense(num_classes, activation="softmax")])
    mine = KerasModel(small, name="mine", feature_kind=features.kind)
    cfg = tff_ser.FederatedConfig(rounds=1, local_epochs=1, batch_size=16, eval_every=0)
    cv = cross_validate(features, mine, cfg, folds=2, progress=False)
    assert cv.settings["model"] == "mine" and cv.pooled["n"] == len(features.clips)
    assert all(r.config["model"] == "mine" for r in cv.results)
    single = task_from_features(features, mine, split_seed=3)
    train = sorted({features.clips[i].speaker for idx in single.train_clients.values()
                    for i in idx})
    held = sorted(single.val_clients)
    same = task_for_speakers(features, mine, train, held, info={"split_seed": 3})
    assert same.info == single.info
    for cid in single.train_clients:
        assert list(same.train_clients[cid]) == list(single.train_clients[cid])
    assert (same.x == single.x).all()


def test_a_partitioner_of_your_own_is_one_registration(features, monkeypatch):
    from tff_ser import partition as P
    from tff_ser.task import task_from_features
    monkeypatch.setitem(P.PARTITIONERS, "halves", lambda clips, *, seed=0: P.iid(clips, 2,
                                                                                 seed=seed))
    task = task_from_features(features, "mlp", partition="halves")
    assert sorted(task.train_clients) == P.client_ids(2)
    with pytest.raises(ValueError, match="unknown partitioner 'nope'"):
        task_from_features(features, "mlp", partition="nope")


def test_settings_share_their_folds_resume_from_saved_folds_and_compare_pairwise(
        features, tmp_path, monkeypatch):
    """Normalizations cross-validated on the same speaker folds: fold i holds out the same
    speakers for every setting and seed, a rerun reads every fold back, and the paired
    difference is the mean of the per-fold differences."""
    import numpy as np
    from tff_ser import crossval
    from tff_ser.task import TaskRecipe
    cfg = tff_ser.FederatedConfig(rounds=1, local_epochs=1, batch_size=16, eval_every=0)
    recipes = {n: TaskRecipe("mlp", normalization=n) for n in ("pooled", "per_client")}
    out = tmp_path / "folds"
    table = tff_ser.cross_validate_settings(features, recipes, cfg, seeds=(0, 1), folds=3,
                                            out_dir=str(out), progress=False)
    assert len(table) == 2 * 2 * 3
    assert list(table.columns[:3]) == ["setting", "seed", "fold"]
    held = table.groupby("fold")["val_speakers"].nunique()
    assert (held == 1).all()  # the same speakers in fold i, whatever the setting and seed
    assert (out / crossval.SETTINGS_FILE).is_file() and (out / "COMPLETE.json").is_file()
    assert table.groupby(["setting", "seed"])["pooled_uar"].nunique().eq(1).all()
    # per_client normalization changes the features: the settings are not the same run
    assert not np.allclose(table[table.setting == "pooled"]["uar"],
                           table[table.setting == "per_client"]["uar"])

    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    from tff_ser import federated
    monkeypatch.setattr(federated, "train_federated", no_training)
    again = tff_ser.cross_validate_settings(features, recipes, cfg, seeds=(0, 1), folds=3,
                                            out_dir=str(out), progress=False)
    assert again.drop(columns="train_seconds").equals(table.drop(columns="train_seconds"))

    view = tff_ser.compare_settings(table, baseline="pooled")
    assert list(view["setting"]) == ["pooled", "per_client"]
    assert list(view["seeds"]) == [2, 2] and list(view["folds"]) == [3, 3]
    diff = (table[table.setting == "per_client"]["uar"].to_numpy()
            - table[table.setting == "pooled"]["uar"].to_numpy()).mean()
    assert view["- pooled (paired over folds)"].iloc[1].startswith(f"{diff:+.3f}, p = ")
    with pytest.raises(ValueError, match="baseline 'federated' is not a setting"):
        tff_ser.compare_settings(table, baseline="federated")
