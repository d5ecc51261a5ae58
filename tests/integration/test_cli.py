"""``tff-ser``: every API knob reachable, tables on the console, JSON on request, quiet."""
import json
import os
import subprocess
import sys

import pytest

from tff_ser import cli

TF_CHATTER = ("Unable to register", "cuda_dnn", "cuda_fft", "cuda_blas", "SetPriority",
              "TF-TRT", "oneDNN")


def test_train_help_lists_engine_threads_held_out_speakers_and_folds(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--engine", "--threads", "--val-fraction", "--split-seed", "--folds", "--loso",
                 "--cache-dir", "--corpus-name", "--emotions", "--json", "--eval-every",
                 "--client-optimizer", "--server-optimizer", "--corpus-seed"):
        assert flag in text, flag


def test_a_training_run_prints_a_table_and_no_tensorflow_cpp_lines(small_corpus_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "tff_ser.cli", "train", "--model", "mlp", "--size", "small",
         "--max-speakers", "6", "--rounds", "1", "--local-epochs", "1", "--engine", "batched",
         "--threads", "1", "--no-progress", "--centralized", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for chatter in TF_CHATTER:
        assert chatter not in proc.stderr + proc.stdout, chatter
    assert "accuracy" in proc.stdout and "F1 (macro)" in proc.stdout
    assert "centralized" in proc.stdout and not proc.stdout.lstrip().startswith("{")
    assert (tmp_path / "run" / "federated" / "result.json").is_file()


def test_a_rerun_with_the_same_checkpoint_dir_resumes_the_centralized_baseline_too(
        small_corpus_dir, tmp_path):
    args = ["train", "--model", "mlp", "--size", "small", "--max-speakers", "4", "--rounds", "2",
            "--local-epochs", "1", "--engine", "batched", "--no-progress", "--centralized",
            "--checkpoint-dir", str(tmp_path / "ck"), "--out", str(tmp_path / "run")]
    assert cli.main(args) == 0
    assert (tmp_path / "ck" / "centralized" / "centralized_state.npz").is_file()
    assert cli.main(args) == 0
    from tff_ser.results import RunResult
    for name in ("federated", "centralized"):
        assert RunResult.load(tmp_path / "run" / name).times["resumed_from_round"] == 2, name


def test_json_only_when_asked(small_corpus_dir, capsys):
    assert cli.main(["train", "--model", "mlp", "--size", "small", "--max-speakers", "4",
                     "--rounds", "1", "--local-epochs", "1", "--no-progress", "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    row = json.loads(last)["federated"]
    assert row["engine"] == "batched" and row["rounds_completed"] == 1


def test_features_write_their_cache_where_asked(small_corpus_dir, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert cli.main(["features", "--size", "small", "--max-speakers", "2", "--kind",
                     "clip_stats", "--cache-dir", str(cache), "--no-progress"]) == 0
    assert any(cache.rglob("*")), "nothing was cached in --cache-dir"
    assert "clip_stats:" in capsys.readouterr().out


def test_threads_cannot_change_once_tensorflow_runs():
    from tff_ser.runtime import set_threads
    import tensorflow as tf
    tf.constant(1.0) + 1.0  # TensorFlow's pools are fixed from here on
    have = tf.config.threading.get_intra_op_parallelism_threads()
    with pytest.raises(ValueError, match="cannot take effect"):
        set_threads(have + 3)


def test_train_takes_a_recipe_and_tffs_aggregators_with_explicit_options_winning():
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--recipe", "fedyogi", "--server-lr", "0.05",
                              "--rounds", "7"])
    cfg = cli._federated_config(args)
    assert (cfg.server_optimizer, cfg.server_lr, cfg.rounds) == ("yogi", 0.05, 7)
    assert cfg.optimizer_kwargs("server")["epsilon"] == 1e-3
    args = parser.parse_args(["train", "--aggregator", "dp", "--unweighted",
                              "--noise-multiplier", "0.7", "--dp-clip", "1.5", "--mu", "0.1"])
    cfg = cli._federated_config(args)
    assert cfg.is_dp and not cfg.weighted and cfg.dp_clip == 1.5
    assert cfg.algorithm == "fedprox" and cfg.proximal_strength == 0.1
    plain = cli._federated_config(parser.parse_args(["train"]))
    from tff_ser.fedconfig import FederatedConfig
    assert plain == FederatedConfig()


def test_asking_for_tff_where_it_is_not_installed_is_one_line_naming_the_stack(monkeypatch, capsys):
    from tff_ser import cli, stack
    monkeypatch.setattr(stack, "has_tff", lambda: False)
    code = cli.main(["train", "--size", "small", "--rounds", "1", "--engine", "tff",
                     "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("tff-ser train: engine='tff'") and "make setup" in err


def test_importing_tff_ser_changes_no_environment_variable_the_cli_quiets_tensorflow():
    code = ("import os, json; before = dict(os.environ); import tff_ser, tff_ser.models, "
            "tff_ser.experiments.registry, tff_ser.federated; "
            "print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
    from tff_ser.runtime import quiet_logs
    saved = {k: os.environ.pop(k, None) for k in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")}
    try:
        quiet_logs()
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3" and os.environ["GRPC_VERBOSITY"] == "ERROR"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_parser_and_every_declared_experiment_load_no_tensorflow():
    # TensorFlow must load after quiet_logs(), or its C++ start-up lines reach the user
    code = ("import sys; from tff_ser.cli import build_parser; build_parser(); "
            "from tff_ser.experiments import registry; "
            "[e.config(q).runs() for e in registry.EXPERIMENTS.values() for q in (False, True)]; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
