"""DP-FedAvg's (epsilon, delta) and the bytes a round moves, checked by hand."""
import math

import numpy as np
import pytest

from helpers import synthetic_task
from tff_ser import communication, models
from tff_ser.fedconfig import FederatedConfig, recipe
from tff_ser.federated import train_federated
from tff_ser.privacy import dp_epsilon, epsilon_by_round

# dp_accounting's default RDP orders
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]


def _hand_epsilon(z, rounds, delta):
    """Gaussian mechanism composed `rounds` times: RDP(a) = rounds * a / (2 z^2), then the
    RDP -> (eps, delta) conversion of Canonne, Kamath & Steinke (2020), Prop. 12."""
    best = math.inf
    for a in ORDERS:
        rdp = rounds * a / (2 * z * z)
        if a > 1.01:
            best = min(best, rdp + math.log1p(-1 / a) - math.log(delta * a) / (a - 1))
    return max(0.0, best)


@pytest.mark.parametrize("z,rounds,delta", [(1.0, 100, 1e-5), (2.0, 50, 1e-3), (0.8, 10, 1e-5)])
def test_epsilon_with_every_client_every_round_matches_a_hand_computation(z, rounds, delta):
    assert dp_epsilon(z, rounds, 73, 73, delta) == pytest.approx(_hand_epsilon(z, rounds, delta),
                                                                 rel=1e-9)


def test_epsilon_grows_with_rounds_and_falls_with_noise_and_sampling():
    eps = epsilon_by_round(1.0, 20, 18, 73, 1e-5)
    assert all(a < b for a, b in zip(eps, eps[1:]))
    assert eps[-1] == pytest.approx(dp_epsilon(1.0, 20, 18, 73, 1e-5))
    assert dp_epsilon(2.0, 20, 18, 73, 1e-5) < eps[-1]
    assert eps[-1] < dp_epsilon(1.0, 20, 73, 73, 1e-5)  # sampling amplifies privacy
    assert dp_epsilon(0.0, 20, 18, 73, 1e-5) == math.inf


def test_a_dp_run_records_the_epsilon_of_its_own_sampling():
    task = synthetic_task(n_train_clients=6)
    config = recipe("dp_fedavg", rounds=3, client_fraction=0.5, dp_clip=1.0,
                    noise_multiplier=1.2, dp_delta=1e-4)
    r = train_federated(task, config, progress=False)
    p = r.final_metrics["privacy"]
    assert p["clients_per_round"] == 3 and p["num_clients"] == 6
    assert p["epsilon"] == pytest.approx(dp_epsilon(1.2, 3, 3, 6, 1e-4))
    assert "without replacement" in p["accountant"]
    assert [h["epsilon"] for h in r.history] == pytest.approx(epsilon_by_round(1.2, 3, 3, 6, 1e-4))


def test_bytes_per_round_of_the_dense_model_match_a_hand_count():
    # Paper 001 Fig 4: Conv1D 512 k3 on (100, 34) -> Flatten (98 x 512) -> 512 -> 512 -> 4
    kernels_and_biases = [(3 * 34 * 512, 512), (98 * 512 * 512, 512), (512 * 512, 512),
                          (512 * 4, 4)]
    params = sum(k + b for k, b in kernels_and_biases)
    assert params == 26_008_068
    model = models.build_model("dense")
    shapes = [tuple(w.shape) for w in model.trainable_weights]
    one = communication.per_client_bytes(shapes, [], compressed=False)
    assert one == {"down": 4 * params, "up": 4 * params}
    # compression: kernels over 20,000 elements -> 8 bits, packed in int32 words, + min and max
    quantized = sum(4 * math.ceil(k * 8 / 32) + 8 for k, _ in kernels_and_biases if k > 20000)
    plain = 4 * (sum(b for _, b in kernels_and_biases)
                 + sum(k for k, _ in kernels_and_biases if k <= 20000))
    assert communication.per_client_bytes(shapes, [], compressed=True)["up"] == quantized + plain
    assert quantized + plain == 26_018_856
    four = communication.round_bytes(([np.zeros(s) for s in shapes], []), 4, compressed=False)
    assert four == {"bytes_down": 4 * 4 * params, "bytes_up": 4 * 4 * params}


def test_a_run_reports_bytes_per_round_and_in_total():
    task = synthetic_task(n_train_clients=6)
    mlp = 136 * 256 + 256 + 256 * 128 + 128 + 128 * 4 + 4
    plain = train_federated(task, FederatedConfig(rounds=2, client_fraction=0.5), progress=False)
    assert all(h["bytes_down"] == 3 * 4 * mlp and h["bytes_up"] == 3 * 4 * mlp
               for h in plain.history)
    c = plain.final_metrics["communication"]
    assert c["bytes_down"] == 2 * 3 * 4 * mlp and c["clients_per_round"] == 3
    comp = train_federated(task, FederatedConfig(rounds=1, aggregator="compression"),
                           progress=False)
    # 136x256 and 256x128 kernels quantized (> 20,000 elements), the rest float32
    up = (136 * 256 + 8) + (256 * 128 + 8) + 4 * (256 + 128 + 128 * 4 + 4)
    assert comp.history[0]["bytes_up"] == 6 * up and comp.final_metrics["communication"]["compressed"]
