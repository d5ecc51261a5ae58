"""Helpers the unit and integration tests share (imported as ``helpers``; ``tests/conftest.py``
puts ``tests/`` on the import path and holds the shared fixtures).

* :func:`synthetic_task`: a small, learnable task with the shapes of paper 000's per-speaker setting;
* :func:`train_with_round_weights`, :func:`max_abs_diff`: a run's weights round by round, compared;
* :func:`notebook_outputs`: what an executed notebook printed and drew.
"""
import numpy as np

from tff_ser.task import Task


def synthetic_task(n_train_clients=6, n_val_clients=2, per_client=30, seed=0, model="mlp"):
    rng = np.random.default_rng(seed)
    n = (n_train_clients + n_val_clients) * per_client
    centers = rng.normal(scale=1.5, size=(4, 136))
    y = rng.integers(0, 4, size=n).astype(np.int32)
    x = (centers[y] + rng.normal(size=(n, 136))).astype(np.float32)
    # Uneven client sizes, as speakers have.
    sizes = [per_client - (i % 3) * 4 for i in range(n_train_clients + n_val_clients)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    clients = {f"s{i:02d}": np.arange(starts[i], starts[i + 1]) for i in range(len(sizes))}
    ids = sorted(clients)
    train = {c: clients[c] for c in ids[:n_train_clients]}
    val = {c: clients[c] for c in ids[n_train_clients:]}
    return Task(model, x, y, train, val, info={"corpus": "synthetic"})


def train_with_round_weights(task, config, engine):
    """``(result, [trainable weights after round 1, 2, ...])`` of one run on ``engine``."""
    from tff_ser.federated import train_federated
    rounds = []
    result = train_federated(task, config, progress=False, engine=engine,
                             callbacks=[lambda r, metrics, weights: rounds.append(
                                 [np.array(w) for w in weights[0]])])
    return result, rounds


def max_abs_diff(a, b):
    """Largest absolute difference between two lists of arrays."""
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def notebook_outputs(notebook):
    """(all text output joined, number of PNG images) of an executed notebook."""
    text, images = [], 0
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                images += "image/png" in out.data
                text.append(out.data.get("text/plain", ""))
                text.append(out.data.get("text/markdown", ""))
    return "\n".join(text), images


def sigkill_once_saved(proc, history, rows: int, *, timeout: float = 600, poll: float = 0.05):
    """SIGKILL ``proc`` once its checkpoint ``history`` (a history.json path) holds ``rows`` rows.

    Fails the test if the process ends first or the rows do not come in ``timeout`` seconds.
    """
    import json
    import os
    import signal
    import time
    import pytest
    deadline = time.monotonic() + timeout
    while True:
        if history.exists():
            try:
                if len(json.loads(history.read_text())) >= rows:
                    break
            except ValueError:  # read mid-write
                pass
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        if time.monotonic() > deadline:
            pytest.fail(f"{history} did not reach {rows} rows in {timeout} s")
        time.sleep(poll)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
