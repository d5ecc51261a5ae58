"""The framework users would pick instead: Flower's simulation, beside tff_ser's batched engine.

Opt-in (``make benchmark-peers``; its own venv ``.venv-peers`` with
``requirements/peers.txt``: flwr[simulation] 1.20.0 and CPU PyTorch; never in
CI).  The same round on both sides: paper 000's per-speaker setting at
CREMA-D scale -- 73 clients x 54 clips of 136 features (random values), the
MLP 136-256-128-4 with dropout 0.2, client Adam (lr 1e-3, a fresh optimizer
every round), BS 32, NLE 1, all clients every round, server Adam on the mean
update (Flower's ``FedAdam``, eta 1e-3; tff_ser's server Adam 1e-3).

* Flower: ``flwr.simulation.start_simulation`` (the Ray backend, one CPU per
  client actor) with a ``FedAdam`` strategy that records the wall time of
  every round (configure -> all clients fit -> aggregate);
* tff_ser: ``BatchedFedAvg.run_rounds``, one round per call, run by the
  project's own ``.venv`` in a subprocess (TensorFlow and PyTorch do not
  share a venv here).

Both are measured twice, alternating (Flower, tff_ser, Flower, tff_ser), the
first round of every block excluded as warm-up; medians over the rest.
Writes ``results/benchmarks/peers.md`` and ``.json``.

Usage::

    make benchmark-peers      # = .venv-peers/bin/python benchmarks/bench_peers.py
"""
from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CLIENTS, CLIPS, FEATURES, CLASSES, BS, ROUNDS = 73, 54, 136, 4, 32, 6
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "results", "benchmarks")

TFF_SER_ROUNDS = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, {here!r})
from bench_round import crema_scale_task
from tff_ser.engines import BatchedFedAvg
from tff_ser.fedconfig import FederatedConfig
task = crema_scale_task()
config = FederatedConfig(rounds={rounds}, local_epochs=1, batch_size={bs}, client_fraction=1.0,
                         client_lr=1e-3, server_lr=1e-3, seed=0)
engine = BatchedFedAvg.for_task(task)
state = engine.initial_state(config)
times = []
for r in range(1, {rounds} + 1):
    state, (row,) = engine.run_rounds(task, config, start_round=r, end_round=r, state=state)
    times.append(row["seconds"])
print("TIMES", json.dumps(times))
"""


def tff_ser_round_times() -> list:
    python = os.path.join(ROOT, ".venv", "bin", "python")
    out = subprocess.run([python, "-c", TFF_SER_ROUNDS.format(here=HERE, rounds=ROUNDS, bs=BS)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    line = [l for l in out.stdout.splitlines() if l.startswith("TIMES")][-1]
    return json.loads(line.split(" ", 1)[1])


def flower_round_times() -> list:
    import flwr as fl
    import torch
    from flwr.common import ndarrays_to_parameters

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(CLIPS, FEATURES)).astype(np.float32),
             rng.integers(0, CLASSES, size=CLIPS)) for _ in range(CLIENTS)]

    def model():
        return torch.nn.Sequential(torch.nn.Linear(FEATURES, 256), torch.nn.ReLU(),
                                   torch.nn.Dropout(0.2), torch.nn.Linear(256, 128),
                                   torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                   torch.nn.Linear(128, CLASSES))

    class Client(fl.client.NumPyClient):
        def __init__(self, cid):
            self.x, self.y = data[cid]
            self.net = model()

        def fit(self, parameters, config):
            with torch.no_grad():
                for p, v in zip(self.net.parameters(), parameters):
                    p.copy_(torch.from_numpy(v))
            optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)  # fresh every round
            order = np.random.permutation(CLIPS)
            self.net.train()
            for i in range(0, CLIPS, BS):
                idx = order[i:i + BS]
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(
                    self.net(torch.from_numpy(self.x[idx])), torch.from_numpy(self.y[idx]))
                loss.backward()
                optimizer.step()
            return [p.detach().numpy() for p in self.net.parameters()], CLIPS, {}

    def client_fn(context):
        cid = int(context.node_config["partition-id"])
        return Client(cid).to_client()

    stamps = []

    class TimedFedAdam(fl.server.strategy.FedAdam):
        def configure_fit(self, server_round, parameters, client_manager):
            stamps.append(("start", time.perf_counter()))
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round, results, failures):
            out = super().aggregate_fit(server_round, results, failures)
            stamps.append(("end", time.perf_counter()))
            return out

    initial = [p.detach().numpy() for p in model().parameters()]
    strategy = TimedFedAdam(
        initial_parameters=ndarrays_to_parameters(initial), fraction_fit=1.0,
        fraction_evaluate=0.0, min_fit_clients=CLIENTS, min_available_clients=CLIENTS,
        eta=1e-3, eta_l=1e-3, beta_1=0.9, beta_2=0.999, tau=1e-7)
    fl.simulation.start_simulation(
        client_fn=client_fn, num_clients=CLIENTS,
        config=fl.server.ServerConfig(num_rounds=ROUNDS), strategy=strategy,
        client_resources={"num_cpus": 1}, ray_init_args={"include_dashboard": False,
                                                         "num_cpus": os.cpu_count()})
    starts = [t for k, t in stamps if k == "start"]
    ends = [t for k, t in stamps if k == "end"]
    return [e - s for s, e in zip(starts, ends)]


def main() -> int:
    flower, ours = [], []
    for _ in range(2):
        flower += flower_round_times()[1:]
        ours += tff_ser_round_times()[1:]
    import flwr
    import torch
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": f"{os.cpu_count()} cores", "flwr": flwr.__version__,
              "torch": torch.__version__, "clients": CLIENTS, "clips": CLIPS, "batch_size": BS,
              "flower_round_seconds": flower, "tff_ser_batched_round_seconds": ours}
    f_med, o_med = statistics.median(flower), statistics.median(ours)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "peers.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = (f"# One FedAvg round, Flower {flwr.__version__} simulation vs tff_ser's batched engine\n\n"
            f"Written by `make benchmark-peers` on {report['date']} ({report['machine']}). "
            f"{CLIENTS} clients x {CLIPS} clips x {FEATURES} features, MLP 136-256-128-4 "
            f"dropout 0.2, client Adam 1e-3 (fresh each round), BS {BS}, NLE 1, all clients, "
            "server Adam 1e-3 (Flower FedAdam). Two alternating blocks of "
            f"{ROUNDS} rounds each, first round of a block excluded.\n\n"
            "| | median round (s) | min-max (s) | n |\n|---|---|---|---|\n"
            f"| Flower (Ray, torch {torch.__version__}) | {f_med:.3f} | {min(flower):.3f}-"
            f"{max(flower):.3f} | {len(flower)} |\n"
            f"| tff_ser batched engine | {o_med:.3f} | {min(ours):.3f}-{max(ours):.3f} | "
            f"{len(ours)} |\n\nFlower / tff_ser = {f_med / o_med:.1f}x.\n")
    with open(os.path.join(OUT, "peers.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
