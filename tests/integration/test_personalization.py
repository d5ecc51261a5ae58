"""Personalization (issue 26, part 2): local fine-tuning per client and new-speaker enrollment.

* a client's personal-test clips are never trained on (neither by FedAvg nor by fine-tuning);
* enrollment never scores a clip it adapted on, and every k is scored on the same clips;
* fine-tuning on a speaker's own clips moves its personal score, and the same seed repeats it.
"""
import numpy as np
import pytest

from helpers import synthetic_task
from tff_ser.fedconfig import FederatedConfig
from tff_ser.federated import train_federated
from tff_ser.personalization import enrollment_curve, finetune_clients, personal_split

CONFIG = FederatedConfig(rounds=3, local_epochs=1, batch_size=8, client_lr=1e-3,
                         server_lr=1e-3, seed=0, eval_every=0)


@pytest.fixture(scope="module")
def trained():
    task = synthetic_task(per_client=30)
    train_task, personal_test = personal_split(task, test_fraction=0.25, seed=1)
    result = train_federated(train_task, CONFIG, progress=False, federated_eval=False)
    return task, train_task, personal_test, result.weights


def test_personal_test_clips_are_held_back_from_fedavg_and_stratified(trained):
    task, train_task, personal_test, _ = trained
    for cid, idx in task.train_clients.items():
        held = personal_test[cid]
        assert not set(held) & set(train_task.train_clients[cid])
        assert set(held) | set(train_task.train_clients[cid]) == set(idx)
        assert len(held) == round(0.25 * len(idx))
        assert len(set(task.y[held])) == min(len(held), len(set(task.y[idx])))


def test_fine_tuning_scores_each_client_on_its_own_held_back_clips_and_repeats(trained):
    _, train_task, personal_test, weights = trained
    table = finetune_clients(train_task, weights, personal_test, steps=5, lr=1e-2, seed=0)
    assert list(table["client"]) == sorted(personal_test)
    assert (table["n_scored"] == [len(personal_test[c]) for c in sorted(personal_test)]).all()
    assert (table["personal_accuracy"] != table["global_accuracy"]).any()
    again = finetune_clients(train_task, weights, personal_test, steps=5, lr=1e-2, seed=0)
    np.testing.assert_array_equal(table["personal_accuracy"], again["personal_accuracy"])
    head = finetune_clients(train_task, weights, personal_test, steps=5, lr=1e-2, layers="head")
    assert len(head) == len(table)


def test_enrollment_never_scores_a_clip_it_adapted_on_and_k0_is_the_global_model(trained):
    task, _, _, weights = trained
    curve = enrollment_curve(task, weights, ks=(0, 2, 5), steps=3, lr=1e-2, seed=0)
    assert set(curve["k"]) == {0, 2, 5}
    for spk, rows in curve.groupby("speaker"):
        idx = set(task.val_clients[spk])
        largest = set(rows.loc[rows["k"] == 5, "enrolled"].iloc[0])
        assert rows["n_scored"].nunique() == 1 and rows["n_scored"].iloc[0] == len(idx) - 5
        for _, r in rows.iterrows():
            assert set(r["enrolled"]) <= largest <= idx and len(r["enrolled"]) == r["k"]
        # k = 0 is the global model itself on the same scored clips
        model = task.model_def.build(task.input_shape, task.num_classes, seed=0)
        model.set_weights(list(weights[0]) + list(weights[1]))
        scored = np.array(sorted(idx - largest))
        hits = np.argmax(model(task.x[scored], training=False).numpy(), axis=1) == task.y[scored]
        assert rows.loc[rows["k"] == 0, "accuracy"].iloc[0] == pytest.approx(hits.mean())
    with pytest.raises(ValueError, match="leaves none to score"):
        enrollment_curve(task, weights, ks=(0, 40))


@pytest.mark.parametrize("layers", ["all", "head"])
def test_an_adapter_reused_across_clients_adapts_as_a_fresh_model_does(trained, layers):
    # finetune_clients and enrollment_curve adapt one compiled model client after client
    # (tracing a fresh one per client was most of their time): the weights and the
    # optimizer's slots and step count must start over for each, as a fresh model's do.
    from tff_ser.personalization import _Adapter
    _, train_task, _, weights = trained
    first, second = sorted(train_task.train_clients)[:2]
    kw = dict(steps=3, batch_size=8, seed=5)
    reused = _Adapter(train_task, lr=1e-2, layers=layers)
    reused.adapt(weights, train_task.train_clients[first], **kw)
    after_another = [v.numpy() for v in reused.adapt(weights, train_task.train_clients[second],
                                                     **kw).weights]
    fresh = _Adapter(train_task, lr=1e-2, layers=layers).adapt(
        weights, train_task.train_clients[second], **kw)
    for got, want in zip(after_another, fresh.weights):
        np.testing.assert_array_equal(got, want.numpy())
    start = list(weights[0]) + list(weights[1])
    assert any(not np.array_equal(w.numpy(), s) for w, s in zip(fresh.weights, start))


def _no_dropout(input_shape, num_classes):
    import keras
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(num_classes, activation="softmax")])


@pytest.mark.tff
@pytest.mark.parametrize("layers", ["all", "head"])
def test_local_fine_tuning_equals_tffs_personalization_evaluation(layers):
    # TFF's build_personalization_eval_computation runs the same fine-tuning as a
    # personalize_fn on each client (tff_ser.engines.tff_personalization).  Compared
    # with the clips in index order (Keras' fit shuffle and tf.data's draw different
    # orders) and a model without dropout (fit and forward_pass draw different masks):
    # every client's global and fine-tuned accuracy and UAR are equal, and fine-tuning
    # moved them.
    from tff_ser.engines.tff_personalization import tff_finetune_clients
    from tff_ser.models import KerasModel
    model = KerasModel(_no_dropout, name="no_dropout", feature_kind="clip_stats")
    task = synthetic_task(n_train_clients=4, per_client=24, model=model)
    train_task, personal_test = personal_split(task, test_fraction=0.25, seed=1)
    weights = train_federated(train_task, CONFIG, progress=False, federated_eval=False).weights
    kw = dict(steps=3, lr=1e-2, batch_size=8, layers=layers)
    ours = finetune_clients(train_task, weights, personal_test, shuffle=False, **kw)
    tffs = tff_finetune_clients(train_task, weights, personal_test, **kw)
    assert list(tffs["client"]) == list(ours["client"])
    for column in ("adapted_on", "n_scored", "global_accuracy", "global_uar",
                   "personal_accuracy", "personal_uar"):
        np.testing.assert_allclose(tffs[column], ours[column], atol=1e-9, err_msg=column)
    assert (ours["personal_accuracy"] != ours["global_accuracy"]).any()
