# tff_ser: the two commands of the README are `make run` and `make test`.
# Both create .venv on first use from the pinned lock file.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
TFF_WHEEL := tensorflow-federated==0.87.0
STAMP  := $(VENV)/.installed

.PHONY: setup setup-gpu run test test-slow notebooks corpus benchmark benchmark-quick benchmark-peers clean-venv

setup: $(STAMP)

# TFF 0.87 pins jaxlib==0.4.14, which is no longer on the package index; jax
# 0.4.14's own floor is jaxlib>=0.4.11, so the lock pins jax/jaxlib 0.4.13 and
# TFF itself goes in with --no-deps (README: "Why the install is a Makefile and a lock file").
$(STAMP): requirements/lock.txt setup.cfg
	@$(PYTHON) -c 'import sys; assert (3,9) <= sys.version_info[:2] < (3,12), "tff_ser needs Python 3.9-3.11 (TFF 0.87); found %s" % sys.version.split()[0]' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip==26.3" "setuptools>=68" "wheel==0.45.1"
	$(PIP) install --quiet -r requirements/lock.txt
	$(PIP) install --quiet --no-deps $(TFF_WHEEL)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "import tensorflow_federated, tff_ser; print('tff_ser ready: TFF', tensorflow_federated.__version__)"
	touch $(STAMP)

# The main job on the embedded (generated) corpus.
run: $(STAMP)
	$(VENV)/bin/tff-ser run

test: $(STAMP)
	$(VENV)/bin/python -m pytest

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -m slow

# Execute every numbered notebook in place at full size, so GitHub shows its tables and
# figures.  The experiment notebooks read the committed results back (minutes, no
# training); run it after an experiment's results change, then commit the notebooks.
notebooks: $(STAMP)
	cd notebooks && for nb in 0*.ipynb; do \
	  ../$(PY) -m papermill --kernel python3 --cwd . "$$nb" "$$nb" || exit 1; done

corpus: $(STAMP)
	$(VENV)/bin/tff-ser data generate

# The CUDA libraries of TF 2.14.1's `and-cuda` extra, pinned; then a check that TF sees the GPU.
setup-gpu: $(STAMP)
	$(PIP) install --quiet -r requirements/gpu.txt
	$(PY) -c "import tensorflow as tf; g = tf.config.list_physical_devices('GPU'); print('GPUs:', g or 'none found (CPU only)')"

# Engine benchmarks: writes results/benchmarks/{round_ratio,engines}.{md,json}.
# The full engine benchmark takes 1-2 h on 2 cores (full-size dense/LSTM cells).
benchmark: $(STAMP)
	$(PY) benchmarks/bench_round.py
	$(PY) benchmarks/bench_engines.py

benchmark-quick: $(STAMP)
	$(PY) benchmarks/bench_round.py --quick
	$(PY) benchmarks/bench_engines.py --settings small4 --reps 3

# Opt-in, never in CI: Flower's simulation (its own venv: flwr + CPU PyTorch) timed
# beside the batched engine; writes results/benchmarks/peers.{md,json}.
PEERS := .venv-peers
$(PEERS)/.installed: requirements/peers.txt
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install --quiet --upgrade "pip==26.3"
	$(PEERS)/bin/pip install --quiet -r requirements/peers.txt
	touch $@

benchmark-peers: $(STAMP) $(PEERS)/.installed
	$(PEERS)/bin/python benchmarks/bench_peers.py

clean-venv:
	rm -rf $(VENV)
