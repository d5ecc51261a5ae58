"""Speaker-independent folds: every speaker held out once, never trained on in its fold."""
import collections

import pytest

import tff_ser
from tff_ser.crossval import cross_validate, speaker_folds
from tff_ser.experiments.common import load_features


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
