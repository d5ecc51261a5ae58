"""One TaskRecipe for every front door: CLI, experiment runs, folds and the HPO grid."""
import dataclasses

import numpy as np
import pytest

from tff_ser.corpus.records import EMOTIONS_4, Clip
from tff_ser.features.pipeline import FeatureSet
from tff_ser.task import TaskRecipe, prepare_task, task_from_features


def features(n_speakers=20, per_emotion=3, seed=0):
    """Clip-statistics-shaped features of a CREMA-D-named clip list (no audio)."""
    clips = []
    for a in range(n_speakers):
        speaker = str(1001 + a)
        for emotion in EMOTIONS_4:
            for i in range(per_emotion):
                clips.append(Clip(f"/c/{speaker}_S{i:02d}_{emotion}_XX.wav", speaker, emotion,
                                  f"S{i:02d}", "XX", "crema-d", "M" if a % 2 else "F"))
    x = np.random.default_rng(seed).normal(size=(len(clips), 12)).astype(np.float32)
    return FeatureSet(x=x, clips=clips, skipped=[], kind="clip_stats", params={})


def speakers(task, part):
    clips = FEATURES.clips
    return {clips[i].speaker for idx in getattr(task, part).values() for i in idx}


FEATURES = features()


@pytest.mark.parametrize("recipe", [
    TaskRecipe("mlp"),
    TaskRecipe("mlp", partition="iid", k=5, split_seed=3),
    TaskRecipe("mlp", partition="dirichlet", k=4, alpha=0.3, val_fraction=0.3),
    TaskRecipe("mlp", normalization="per_client", enroll=2),
])
def test_a_recipe_holds_speakers_out_whatever_the_training_seed(recipe):
    tasks = [recipe.task(FEATURES, seed=s) for s in (0, 1)]
    for task in tasks:
        assert not speakers(task, "train_clients") & speakers(task, "val_clients")
        assert task.info["split_seed"] == recipe.split_seed
    # held-out speakers depend on split_seed only, never on the training seed
    assert speakers(tasks[0], "val_clients") == speakers(tasks[1], "val_clients")


def test_the_functional_builders_are_the_recipe():
    recipe = TaskRecipe("mlp", partition="iid", k=3, split_seed=2)
    a = recipe.task(FEATURES, seed=4)
    b = task_from_features(FEATURES, "mlp", partition="iid", k=3, seed=4, split_seed=2)
    np.testing.assert_array_equal(a.x, b.x)
    assert {c: list(v) for c, v in a.train_clients.items()} == \
        {c: list(v) for c, v in b.train_clients.items()}
    assert a.info == b.info


def test_a_fold_is_the_recipe_on_given_speakers():
    recipe = TaskRecipe("mlp", partition="iid", k=2)
    all_speakers = sorted({c.speaker for c in FEATURES.clips})
    task = recipe.task_for_speakers(FEATURES, all_speakers[4:], all_speakers[:4], seed=1,
                                    info={"fold": 0})
    assert speakers(task, "val_clients") == set(all_speakers[:4])
    assert len(task.train_clients) == 2 and task.info["fold"] == 0


def test_every_front_door_describes_the_same_task_with_the_same_recipe():
    from tff_ser.experiments.configs import RunSpec
    from tff_ser.hpo.space import QUICK_GRID
    spec = RunSpec(run_id="r", condition="c", model="mlp", mode="federated",
                   partition="iid", clients=6, setup="iid k=6", split_seed=1)
    assert spec.recipe() == TaskRecipe("mlp", partition="iid", k=6, split_seed=1)
    grid = dataclasses.replace(QUICK_GRID, partition="single_emotion", clients=8)
    assert grid.recipe(split_seed=1) == TaskRecipe("mlp", partition="single_emotion", k=8,
                                                   split_seed=1)


@pytest.mark.parametrize("bad, message", [
    (dict(partition="by_colour"), "by_colour"),
    (dict(partition="iid", k=0), "k (clients)"),
    (dict(val_fraction=1.0), "val_fraction"),
    (dict(normalization="global"), "normalization must be one of"),
    (dict(enroll=3), "per_client"),
])
def test_a_bad_recipe_is_refused_before_any_corpus_is_read(bad, message, tmp_path):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TaskRecipe("mlp", **bad)
    # prepare_task builds the recipe first: an empty directory is never even looked at
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_task("mlp", data_dir=str(tmp_path / "nothing-here"), **bad)


def test_cross_validate_refuses_a_recipe_contradicted_by_its_arguments():
    from tff_ser.crossval import cross_validate
    from tff_ser.federated import FederatedConfig
    with pytest.raises(ValueError, match="set them on the recipe"):
        cross_validate(FEATURES, TaskRecipe("mlp"), FederatedConfig(), partition="iid")
