"""A new engine is one registration: train_federated, auto and the CLI pick it up."""
import numpy as np
import pytest

from tff_ser.engines import base
from tff_ser.engines.plain_tf import PlainTFEngine
from tff_ser.fedconfig import FederatedConfig
from tff_ser.task import Task


class CountingEngine(PlainTFEngine):
    """The tf engine, counting its rounds: stands in for an engine of your own."""

    rounds_run = 0

    def round(self, round_num):
        type(self).rounds_run += 1
        return super().round(round_num)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(base, "ENGINES", dict(base.ENGINES))
    monkeypatch.setattr(base, "ENGINE_NAMES", base.ENGINE_NAMES)
    base.register_engine("counting", f"{__name__}:CountingEngine", auto=False)
    CountingEngine.rounds_run = 0
    return "counting"


def _task(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 136)).astype(np.float32)
    y = rng.integers(0, 4, 60).astype(np.int32)
    return Task("mlp", x, y, {"a": np.arange(0, 30), "b": np.arange(30, 50)},
                {"v": np.arange(50, 60)})


def test_a_registered_engine_trains_and_equals_the_engine_it_wraps(registered):
    from tff_ser.federated import train_federated
    cfg = FederatedConfig(rounds=2, local_epochs=1, batch_size=8, eval_every=0)
    mine = train_federated(_task(), cfg, engine=registered, progress=False)
    assert CountingEngine.rounds_run == 2 and mine.config["engine"] == "counting"
    ref = train_federated(_task(), cfg, engine="tf", progress=False)
    for a, b in zip(mine.weights[0], ref.weights[0]):
        np.testing.assert_array_equal(a, b)


def test_the_cli_offers_a_registered_engine_and_auto_skips_one_not_allowed_there(registered):
    from tff_ser import cli
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--engine", "counting"])
    assert args.engine == "counting"
    assert base.choose_engine(_task(), FederatedConfig(rounds=1)) == "batched"


def test_registration_is_checked():
    with pytest.raises(ValueError, match="cannot name an engine"):
        base.register_engine("auto", "x:Y")
    with pytest.raises(ValueError, match="module:Class"):
        base.register_engine("mine", "no_colon")
