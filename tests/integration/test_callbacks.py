"""Per-round callbacks and early stopping (tff_ser.callbacks)."""
import numpy as np
import pytest

from helpers import synthetic_task
from tff_ser.callbacks import EarlyStopping
from tff_ser.fedconfig import FederatedConfig
from tff_ser.federated import train_federated


def test_a_callback_sees_every_round_with_its_metrics_and_the_server_weights():
    seen = []

    def hook(round_num, metrics, weights):
        seen.append((round_num, dict(metrics), [w.copy() for w in weights[0]]))

    task = synthetic_task()
    r = train_federated(task, FederatedConfig(rounds=3, eval_every=1), progress=False,
                        callbacks=[hook])
    assert [s[0] for s in seen] == [1, 2, 3]
    assert all("val_accuracy" in s[1] and "bytes_up" in s[1] for s in seen)
    assert all(np.array_equal(a, b) for a, b in zip(seen[-1][2], r.weights[0]))
    assert not np.array_equal(seen[0][2][0], seen[-1][2][0])


def test_returning_true_stops_and_a_rerun_returns_the_stopped_run(tmp_path):
    task = synthetic_task()
    config = FederatedConfig(rounds=6)
    stop_at_2 = lambda r, m, w: r == 2  # noqa: E731
    ck = str(tmp_path / "ck")
    r = train_federated(task, config, progress=False, callbacks=[stop_at_2], checkpoint_dir=ck)
    assert len(r.history) == 2 and r.final_metrics["stopped_early"]["round"] == 2
    again = train_federated(task, config, progress=False, checkpoint_dir=ck)
    assert len(again.history) == 2 and again.final_metrics["stopped_early"]["round"] == 2
    assert again.final_metrics["validation"] == r.final_metrics["validation"]


def test_early_stopping_counts_patience_on_evaluation_rounds_only():
    es = EarlyStopping("val_accuracy", patience=2)
    values = {2: 0.5, 4: 0.6, 6: 0.55, 8: 0.6, 10: 0.7}
    stopped = next(r for r in range(1, 11)
                   if es(r, {"val_accuracy": values[r]} if r in values else {}))
    assert stopped == 8 == es.stopped_round and es.best == 0.6 and es.best_round == 4
    low = EarlyStopping("train_loss", patience=1, mode="min")
    assert not low(1, {"train_loss": 1.0}) and low(2, {"train_loss": 1.2})


def test_early_stopping_in_a_run_and_across_a_resume(tmp_path):
    task = synthetic_task()
    config = FederatedConfig(rounds=40, eval_every=1, client_lr=0.01)
    full = EarlyStopping("val_accuracy", patience=2)
    r = train_federated(task, config, progress=False, callbacks=[full])
    assert full.stopped_round is not None and len(r.history) == full.stopped_round < 40
    assert r.final_metrics["stopped_early"]["by"][0]["best_round"] == full.best_round
    # the same run cut in two: patience carries over the restart
    ck = str(tmp_path / "ck")
    cut = full.stopped_round - 1
    train_federated(task, FederatedConfig(rounds=40, eval_every=1, client_lr=0.01),
                    progress=False, checkpoint_dir=ck,
                    callbacks=[EarlyStopping("val_accuracy", patience=2),
                               lambda rnd, m, w: rnd == cut])
    resumed = EarlyStopping("val_accuracy", patience=2)
    # the first call stopped by the lambda; continuing needs a fresh directory state
    import os
    os.remove(os.path.join(ck, "stopped.json"))
    r2 = train_federated(task, config, progress=False, checkpoint_dir=ck, callbacks=[resumed])
    assert resumed.stopped_round == full.stopped_round
    assert [h["train_loss"] for h in r2.history] == [h["train_loss"] for h in r.history]


def test_early_stopping_on_a_validation_metric_needs_evaluation_rounds():
    with pytest.raises(ValueError, match="eval_every"):
        train_federated(synthetic_task(), FederatedConfig(rounds=2), progress=False,
                        callbacks=[EarlyStopping("val_accuracy")])


def test_tensorboard_and_csv_loggers_record_every_round_and_a_resume_adds_no_duplicate(tmp_path):
    import glob
    import pandas as pd
    import tensorflow as tf
    from helpers import synthetic_task
    from tff_ser.federated import FederatedConfig, train_federated
    task = synthetic_task(n_train_clients=3, n_val_clients=1, per_client=12)
    csv = tmp_path / "rounds.csv"
    kw = dict(checkpoint_dir=str(tmp_path / "ck"), csv_path=str(csv),
              tensorboard_dir=str(tmp_path / "tb"), progress=False)
    train_federated(task, FederatedConfig(rounds=2, batch_size=8), **kw)
    train_federated(task, FederatedConfig(rounds=3, batch_size=8), **kw)  # extends to round 3
    assert list(pd.read_csv(csv)["round"]) == [1, 2, 3]
    steps = {}
    for path in glob.glob(str(tmp_path / "tb" / "events.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    assert sorted(steps["train_loss"]) == [1, 2, 3] and "bytes_up" in steps


def _tensorboard_values(logdir) -> dict:
    import glob
    import tensorflow as tf
    values = {}
    for path in glob.glob(str(logdir / "events.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") \
                    else value.simple_value
                values.setdefault(value.tag, {})[event.step] = number
    return values


def test_tensorboard_shows_each_held_out_speaker_and_each_personalized_client(tmp_path):
    from helpers import synthetic_task
    from tff_ser.federated import FederatedConfig, train_federated
    from tff_ser.personalization import personal_table, personalized_task
    task = synthetic_task(n_train_clients=3, n_val_clients=2, per_client=16)
    ptask = personalized_task(task, "fedper")
    result = train_federated(ptask, FederatedConfig(rounds=2, batch_size=8, eval_every=1),
                             engine="tf", tensorboard_dir=str(tmp_path / "tb"), progress=False)
    values = _tensorboard_values(tmp_path / "tb")
    for speaker, accuracy in result.final_metrics["validation_per_client_accuracy"].items():
        assert values[f"val_speaker_accuracy/{speaker}"][2] == pytest.approx(accuracy)
        assert sorted(values[f"val_speaker_accuracy/{speaker}"]) == [1, 2]
    for row in personal_table(result).itertuples():
        assert values[f"personal_uar/{row.client}"] == {2: pytest.approx(row.personal_uar)}
        assert values[f"global_uar/{row.client}"] == {2: pytest.approx(row.global_uar)}
