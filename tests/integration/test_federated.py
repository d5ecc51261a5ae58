"""Federated training on TFF: determinism, client sampling, resume after SIGKILL."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from tff_ser.stack import has_tff

from helpers import sigkill_once_saved, synthetic_task
from tff_ser.federated import FederatedConfig, sample_clients, client_order, train_federated

HERE = os.path.dirname(os.path.abspath(__file__))


def test_client_fraction_samples_that_share_of_clients_each_round():
    ids = [f"{i}" for i in range(73)]
    # CD x clients rounded half up (paper 000: CD is a proportion): 36.5 -> 37, not
    # Python's round-half-to-even 36
    for cd, expected in ((0.1, 7), (0.5, 37), (0.75, 55), (1.0, 73)):
        chosen = sample_clients(ids, cd, round_num=3, seed=0)
        assert len(chosen) == expected and len(set(chosen)) == expected
    assert sample_clients(ids, 0.01, 1, 0) and len(sample_clients(ids, 0.01, 1, 0)) == 1


def test_cd_rounds_half_up_in_every_engine_and_in_the_accounting():
    from tff_ser.fedconfig import sampled_per_round
    # 9 x 0.5 = 4.5 -> 5 (the case); float error must not cross the half
    assert [sampled_per_round(n, cd) for n, cd in
            ((9, 0.5), (73, 0.5), (10, 0.35), (10, 0.45), (73, 0.1), (3, 0.1), (7, 0.5))] \
        == [5, 37, 4, 5, 7, 1, 4]
    # the fast engines and TFF's process sample through sample_clients, the
    # DP accounting and the bytes count through sampled_per_round: one rule
    import inspect
    from tff_ser import federated, privacy
    from tff_ser.engines import tff_process
    for module in (federated, privacy, tff_process):
        assert "sampled_per_round" in inspect.getsource(module)
        assert "round(config.client_fraction" not in inspect.getsource(module)


def test_client_sampling_depends_only_on_seed_and_round():
    ids = [f"{i}" for i in range(20)]
    assert sample_clients(ids, 0.5, 4, seed=1) == sample_clients(ids, 0.5, 4, seed=1)
    assert sample_clients(ids, 0.5, 4, seed=1) != sample_clients(ids, 0.5, 5, seed=1)


def test_each_local_epoch_visits_every_clip_once():
    order = client_order(17, 3, seed=0, round_num=2, client_index=5)
    assert len(order) == 51
    for e in range(3):
        assert sorted(order[e * 17:(e + 1) * 17]) == list(range(17))


def test_bad_knobs_are_refused_with_their_paper_names():
    with pytest.raises(ValueError, match="client_fraction"):
        FederatedConfig(client_fraction=0.0)
    with pytest.raises(ValueError, match="NLE"):
        FederatedConfig(local_epochs=0)
    with pytest.raises(ValueError, match="server_optimizer"):
        FederatedConfig(server_optimizer="lamb")
    with pytest.raises(ValueError, match="beta_1.*rmsprop|rmsprop.*decay"):
        FederatedConfig(server_optimizer="rmsprop", server_optimizer_kwargs={"beta_1": 0.9})


#: TFF's process where it is installed (the reference stack), else the tf engine.
LOOP_ENGINE = "tff" if has_tff() else "tf"


@pytest.fixture(scope="module")
def fl_run():
    task = synthetic_task()
    cfg = FederatedConfig(rounds=4, local_epochs=2, batch_size=8, client_fraction=0.5,
                          client_lr=0.01, server_lr=0.01, seed=3, eval_every=2)
    return task, cfg, train_federated(task, cfg, progress=False, engine=LOOP_ENGINE)


def test_federated_mlp_learns_above_chance(fl_run):
    task, cfg, result = fl_run
    assert len(result.history) == cfg.rounds
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.final_metrics["validation"]["accuracy"] > 0.5  # 4 classes, chance 0.25
    assert all(h["clients"] == 3 for h in result.history)  # CD 0.5 of 6 clients
    assert "val_accuracy" in result.history[1]


@pytest.mark.tff
def test_federated_eval_agrees_with_centralized_eval_on_pooled_clips(fl_run):
    _, _, result = fl_run
    fed = result.final_metrics["federated_eval"]["accuracy"]
    assert fed == pytest.approx(result.final_metrics["validation"]["accuracy"], abs=1e-6)


def test_same_seed_gives_same_final_metrics(fl_run):
    task, cfg, result = fl_run
    again = train_federated(task, cfg, progress=False, engine=LOOP_ENGINE)
    assert again.final_metrics["validation"] == result.final_metrics["validation"]
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in result.history]


def test_computation_time_is_the_sum_of_round_times(fl_run):
    _, _, result = fl_run
    assert result.times["train_seconds"] == pytest.approx(sum(result.times["per_round_seconds"]))
    assert result.times["wall_seconds"] >= result.times["train_seconds"]


def test_csv_and_a_mismatched_checkpoint_are_handled(tmp_path):
    task = synthetic_task(n_train_clients=3, n_val_clients=1, per_client=12)
    cfg = FederatedConfig(rounds=2, batch_size=8, client_lr=0.01, server_lr=0.01)
    csv = tmp_path / "rounds.csv"
    train_federated(task, cfg, checkpoint_dir=str(tmp_path / "ck"), csv_path=str(csv), progress=False)
    assert len(csv.read_text().strip().splitlines()) == 3  # header + 2 rounds
    other = FederatedConfig(rounds=2, batch_size=8, client_lr=0.1, server_lr=0.01)
    with pytest.raises(ValueError, match="different configuration"):
        train_federated(task, other, checkpoint_dir=str(tmp_path / "ck"), progress=False)


RUN_SCRIPT = r"""
import json, sys
sys.path[:0] = [{here!r}, {tests!r}]
from helpers import sigkill_once_saved, synthetic_task
from tff_ser.federated import FederatedConfig, train_federated
ck, out, engine = sys.argv[1], sys.argv[2], sys.argv[3]
task = synthetic_task()
cfg = FederatedConfig(rounds=8, local_epochs=1, batch_size=8, client_fraction=0.5,
                      client_lr=0.01, server_lr=0.01, seed=5)
r = train_federated(task, cfg, checkpoint_dir=ck, progress=False, federated_eval=False,
                    engine=engine)
json.dump({{"final": r.final_metrics["validation"], "resumed": r.times["resumed_from_round"],
           "losses": [h["train_loss"] for h in r.history]}}, open(out, "w"))
"""


def _run(args, **kw):
    script = RUN_SCRIPT.format(here=HERE, tests=os.path.dirname(HERE))
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kw)


@pytest.mark.parametrize("engine", ["tff", "tf"])
def test_run_killed_mid_way_resumes_and_ends_like_an_uninterrupted_run(tmp_path, engine):
    straight = tmp_path / "straight.json"
    assert _run([str(tmp_path / "ck_straight"), str(straight), engine]).wait(timeout=600) == 0

    ck = tmp_path / "ck_killed"
    proc = _run([str(ck), str(tmp_path / "never.json"), engine])
    sigkill_once_saved(proc, ck / "history.json", 3)
    assert not (tmp_path / "never.json").exists()

    resumed = tmp_path / "resumed.json"
    assert _run([str(ck), str(resumed), engine]).wait(timeout=600) == 0
    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    assert b["resumed"] >= 2, "the restarted run started from scratch instead of resuming"
    assert b["losses"] == a["losses"]
    assert b["final"] == a["final"]


def test_batched_engine_trains_the_same_task_through_the_same_loop(tmp_path):
    task = synthetic_task()
    cfg = FederatedConfig(rounds=4, local_epochs=2, batch_size=8, client_fraction=0.5,
                          client_lr=0.01, server_lr=0.01, seed=3)
    a = train_federated(task, cfg, progress=False, engine="batched",
                        checkpoint_dir=str(tmp_path / "ck"))
    assert a.config["engine"] == "batched"
    assert a.final_metrics["validation"]["accuracy"] > 0.5
    assert all(h["clients"] == 3 for h in a.history)
    again = train_federated(task, cfg, progress=False, engine="batched")
    assert again.final_metrics["validation"] == a.final_metrics["validation"]
    # A finished checkpoint resumes at the end and changes nothing.
    resumed = train_federated(task, cfg, progress=False, engine="batched",
                              checkpoint_dir=str(tmp_path / "ck"))
    assert resumed.times["resumed_from_round"] == 4
    assert resumed.final_metrics["validation"] == a.final_metrics["validation"]
    # Its wall time counts the first process's rounds, not only its own.
    assert resumed.times["wall_seconds"] >= a.times["train_seconds"]
    assert resumed.times["wall_seconds"] > resumed.times["wall_seconds_this_process"]


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine"):
        train_federated(synthetic_task(), FederatedConfig(rounds=1), engine="fast")


def test_the_loop_and_the_config_import_no_engine_and_no_tensorflow():
    """fedconfig imports no engine; the loop reaches engines only through engines.base."""
    code = ("import sys, tff_ser.fedconfig, tff_ser.federated, tff_ser.experiments.configs; "
            "print(sorted(m for m in sys.modules if m.startswith('tff_ser.engines.') "
            "or m == 'tensorflow'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['tff_ser.engines.base']"


def test_a_saved_run_is_extended_to_more_rounds_and_never_cut_back(tmp_path):
    task = synthetic_task(n_train_clients=3, n_val_clients=1, per_client=12)
    cfg = FederatedConfig(rounds=5, batch_size=8, client_lr=0.01, server_lr=0.01, seed=1)
    straight = train_federated(task, cfg, progress=False, engine=LOOP_ENGINE)
    ck = str(tmp_path / "ck")
    train_federated(task, dataclasses.replace(cfg, rounds=2), checkpoint_dir=ck, progress=False,
                    engine=LOOP_ENGINE)
    extended = train_federated(task, cfg, checkpoint_dir=ck, progress=False, engine=LOOP_ENGINE)
    assert extended.times["resumed_from_round"] == 2
    assert [h["train_loss"] for h in extended.history] == [h["train_loss"] for h in straight.history]
    assert extended.final_metrics["validation"] == straight.final_metrics["validation"]
    with pytest.raises(ValueError, match="saved after 5 rounds .epochs., past the 3 asked for"):
        train_federated(task, dataclasses.replace(cfg, rounds=3), checkpoint_dir=ck,
                        progress=False, engine=LOOP_ENGINE)


def test_checkpoint_every_saves_every_k_rounds_and_the_last(tmp_path):
    from tff_ser.errors import TrainingInterrupted
    task = synthetic_task(n_train_clients=3, n_val_clients=1, per_client=12)
    cfg = FederatedConfig(rounds=5, batch_size=8, client_lr=0.01, server_lr=0.01, seed=1)
    straight = train_federated(task, cfg, progress=False, engine=LOOP_ENGINE)

    def ctrl_c_in_round_3(round_num, metrics, weights):
        if round_num == 3:
            raise KeyboardInterrupt

    ck = str(tmp_path / "ck")
    with pytest.raises(TrainingInterrupted, match=r"rounds 1\.\.2 are saved"):
        train_federated(task, cfg, checkpoint_dir=ck, checkpoint_every=2, progress=False,
                        engine=LOOP_ENGINE, callbacks=[ctrl_c_in_round_3])
    resumed = train_federated(task, cfg, checkpoint_dir=ck, checkpoint_every=2, progress=False,
                              engine=LOOP_ENGINE)
    assert resumed.times["resumed_from_round"] == 2
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        train_federated(task, cfg, checkpoint_every=0, progress=False)
