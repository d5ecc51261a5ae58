"""The papers are baselines the core discovers: each one registration, none named by the core."""
import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_built_in_baselines_register_their_models_and_experiments_with_a_readme():
    from tff_ser.baselines import BASELINES, get_baseline
    from tff_ser.experiments.registry import EXPERIMENTS
    from tff_ser.models import MODELS
    assert get_baseline("paper001").models == ("dense", "conv1d", "lstm")
    assert set(BASELINES) == {"paper000", "paper001", "paper002", "paper003", "paper004"}
    for name, baseline in BASELINES.items():
        readme = baseline.readme.read_text()
        for experiment in baseline.experiments:
            assert experiment.startswith(name + "_") and experiment in EXPERIMENTS
            assert f"tff-ser experiment {experiment}" in readme, (name, experiment)
            assert EXPERIMENTS[experiment].full.name == experiment
        assert "Expected results" in readme and "not CREMA-D" in readme
        for model in baseline.models:
            assert MODELS[model].builder.__module__ == f"tff_ser.baselines.{name}.models"
    assert set(EXPERIMENTS) == {e for b in BASELINES.values() for e in b.experiments}


def _docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant):
            yield node.body[0].value


def test_the_core_names_no_paper():
    """No module outside tff_ser/baselines imports a baseline or names a paper's experiment in
    its code (docstring examples aside; the registry's MAIN_JOB names the main job)."""
    offenders = []
    for path in (ROOT / "tff_ser").rglob("*.py"):
        rel = path.relative_to(ROOT / "tff_ser").as_posix()
        if rel.startswith("baselines/"):
            continue
        tree = ast.parse(path.read_text())
        docs = {id(d) for d in _docstrings(tree)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "tff_ser.baselines"):
                offenders.append(f"{rel}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.Import) and any(
                    a.name.startswith("tff_ser.baselines") for a in node.names):
                offenders.append(f"{rel}:{node.lineno} imports a baseline")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docs \
                    and re.search(r"paper00\d_(exp\d|per_speaker|algorithms|fedavg)\b",
                                  node.value) \
                    and (rel, node.value) != ("experiments/registry.py", "paper000_per_speaker"):
                offenders.append(f"{rel}:{node.lineno} names {node.value!r}")
    assert offenders == []


def test_finding_the_baselines_imports_no_keras():
    code = ("import sys; from tff_ser.experiments.registry import EXPERIMENTS; "
            "from tff_ser.models import MODELS; n = len(EXPERIMENTS) + len(MODELS); "
            "print(n, 'keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    n, keras, tf = out.stdout.split()
    assert int(n) >= 14 and keras == "False" and tf == "False"


# A baseline another distribution ships: one package that registers a model, an
# experiment and itself, found through the ``tff_ser.baselines`` entry point.
THIRD_PARTY = '''
"""A paper of someone's own, as a tff_ser baseline."""
import dataclasses
import pathlib
from typing import List, Tuple

from tff_ser.baselines import Baseline, register_baseline
from tff_ser.experiments.configs import (CENTRALIZED, FEDERATED, EXPERIMENT_FL,
                                         ExperimentConfig)
from tff_ser.experiments.registry import Experiment, register_experiment
from tff_ser.models import FEATURE_SHAPES, ModelSpec, register_model


def tiny_mlp(input_shape, num_classes, *, seed=None):
    import keras
    keras.utils.set_random_seed(seed or 0)
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(num_classes, activation="softmax")])


register_model(ModelSpec("tiny_mlp", "paper999:tiny_mlp", "clip_stats",
                         FEATURE_SHAPES["clip_stats"], "999 2.1", "Dense 8 -> softmax"))


@dataclasses.dataclass(frozen=True)
class TinyVsCentralized(ExperimentConfig):
    name: str = "paper999_tiny"
    paper: str = "paper 999, Table 1"
    models: Tuple[str, ...] = ("tiny_mlp",)
    fl: object = dataclasses.replace(EXPERIMENT_FL, rounds=2, eval_every=0)

    def conditions(self):
        return (self._spec("tiny_mlp-by_speaker", "tiny_mlp", FEDERATED, "by_speaker", 0,
                           "by_speaker"),
                self._spec("tiny_mlp-centralized", "tiny_mlp", CENTRALIZED, "by_speaker", 0,
                           CENTRALIZED))

    def paper_section(self, table) -> List[str]:
        return ["## Paper 999 Table 1", "", "The paper reports 0.99 (its own corpus)."]


FULL = TinyVsCentralized(engine="auto", seeds=(0,))
QUICK = dataclasses.replace(FULL, size="small", max_speakers=6, quick=True,
                            federated_eval=False)
register_experiment(Experiment("paper999_tiny", FULL, QUICK, "paper 999: a tiny MLP"))
register_baseline(Baseline("paper999", "Someone et al., A paper", models=("tiny_mlp",),
                           experiments=("paper999_tiny",),
                           readme=pathlib.Path(__file__).with_name("README.md")))
'''


@pytest.fixture
def third_party(tmp_path):
    site = tmp_path / "site"
    package = site / "paper999"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(THIRD_PARTY)
    (package / "README.md").write_text("# paper999\n\n`tff-ser experiment paper999_tiny`\n")
    dist = site / "paper999-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: paper999\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tff_ser.baselines]\npaper999 = paper999\n")
    broken = site / "broken-1.0.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (broken / "entry_points.txt").write_text("[tff_ser.baselines]\nbroken = no_such_module\n")
    return site


def test_a_new_baseline_is_one_registration_found_through_its_entry_point(
        third_party, small_corpus_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(third_party), str(ROOT)]))
    listing = subprocess.run([sys.executable, "-m", "tff_ser.cli", "experiment", "--help"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "paper999_tiny: paper 999: a tiny MLP" in listing.stdout
    assert "paper001_exp1" in listing.stdout  # a broken plugin hides no built-in baseline
    assert "no_such_module" in listing.stderr  # ... and is reported, not dropped silently
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "tff_ser.cli", "experiment", "paper999_tiny",
                          "--quick", "--out", str(out), "--data-dir", small_corpus_dir,
                          "--no-progress"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    assert "## Paper 999 Table 1" in summary and "tiny_mlp" in summary
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "tiny_mlp-by_speaker-s0", "tiny_mlp-centralized-s0"]


def test_registrations_refuse_a_taken_name_and_a_name_off_the_scheme():
    import dataclasses
    from tff_ser.baselines import Baseline, register_baseline
    from tff_ser.experiments.registry import EXPERIMENTS, register_experiment
    from tff_ser.models import MODELS, ModelSpec, register_model
    taken = MODELS["mlp"]
    with pytest.raises(ValueError, match="registered already"):
        register_model(dataclasses.replace(taken, description="another"))
    exp = EXPERIMENTS["paper001_exp1"]
    with pytest.raises(ValueError, match="registered already"):
        register_experiment(dataclasses.replace(exp, summary="another"))
    with pytest.raises(ValueError, match="'<baseline>_<what>'"):
        register_experiment(dataclasses.replace(exp, name="Exp1"))
    with pytest.raises(ValueError, match="must be named 'paper123_<what>'"):
        register_baseline(Baseline("paper123", "x", (), ("exp1",), ROOT / "README.md"))
    with pytest.raises(ValueError, match="a lazy builder is 'module:function'"):
        ModelSpec("x", "no_colon", "clip_stats", (136,), "", "")
