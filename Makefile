# tff_ser: the two commands of the README are `make run` and `make test`.
# Both create the stack's venv on first use from its pinned lock file.
#
# Two stacks (docs/install.md):
#   STACK=reference (default): Python 3.11, TensorFlow 2.14, Keras 2, TFF 0.87 -> .venv
#   STACK=current:             Python 3.11-3.13, TensorFlow 2.20, Keras 3, NumPy 2,
#                              no TFF (Colab's default runtime's pins)       -> .venv-current
STACK  ?= reference
ifeq ($(STACK),reference)
PYTHON ?= python3.11
VENV   := .venv
LOCK   := requirements/lock.txt
else ifeq ($(STACK),current)
PYTHON ?= python3
VENV   := .venv-current
LOCK   := requirements/lock-current.txt
else
$(error STACK must be reference or current, not '$(STACK)')
endif
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
TFF_WHEEL := tensorflow-federated==0.87.0
STAMP  := $(VENV)/.installed
# Editable install through a path entry (setuptools' compat mode): the real package then wins
# over a folder named tff_ser beside a user's script (a clone's own name), which the default
# finder loses to as a namespace package (tests/integration/test_install.py).  setuptools is pinned because
# it calls this mode transitional.
EDITABLE := --config-settings editable_mode=compat

.PHONY: setup setup-gpu run test test-slow test-colab notebooks corpus benchmark benchmark-quick benchmark-peers benchmark-stacks clean-venv docs docs-test lint

setup: $(STAMP)

# Reference: TFF 0.87 pins jaxlib==0.4.14, which is no longer on the package
# index; jax 0.4.14's own floor is jaxlib>=0.4.11, so the lock pins jax/jaxlib
# 0.4.13 and TFF itself goes in with --no-deps (docs/install.md: "Why the install is a
# Makefile and a lock file").  Current: the lock alone, no TFF.
$(STAMP): $(LOCK) setup.cfg
ifeq ($(STACK),reference)
	@$(PYTHON) -c 'import sys; assert (3,9) <= sys.version_info[:2] < (3,12), "the reference stack (TFF 0.87) needs Python 3.9-3.11; found %s. Use STACK=current on Python 3.12/3.13" % sys.version.split()[0]'
else
	@$(PYTHON) -c 'import sys; assert (3,11) <= sys.version_info[:2] < (3,14), "the current stack needs Python 3.11-3.13; found %s" % sys.version.split()[0]'
endif
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.45.1"
	$(PIP) install --quiet -r $(LOCK)
ifeq ($(STACK),reference)
	$(PIP) install --quiet --no-deps $(TFF_WHEEL)
	$(PIP) install --quiet --no-deps --no-build-isolation -e . $(EDITABLE)
	$(PY) -c "import tensorflow_federated, tff_ser; print('tff_ser ready (reference stack): TFF', tensorflow_federated.__version__)"
else
	$(PIP) install --quiet --no-deps --no-build-isolation -e . $(EDITABLE)
	$(PY) -c "import tff_ser, keras, tensorflow as tf; print('tff_ser ready (current stack): TensorFlow', tf.__version__, 'Keras', keras.__version__)"
endif
	touch $(STAMP)

# The main job on the embedded (generated) corpus.
run: $(STAMP)
	$(VENV)/bin/tff-ser run

# The suite in TEST_WORKERS processes (pytest-xdist; 2 = CI's two cores, 22 min instead of
# 31 on the reference stack, docs/tests.md).  TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS)

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -m slow

# Colab's default runtime (requirements/colab-default.txt) in a fresh venv: the notebooks'
# install cell, notebooks 01 and 05, the docs' Keras 3 example (~5 min).
test-colab:
	$(MAKE) setup STACK=current
	.venv-current/bin/python -m pytest -m colab

# Execute every numbered notebook in place at full size, so GitHub shows its tables and
# figures.  The experiment notebooks read the committed results back (minutes, no
# training); run it after an experiment's results change, then commit the notebooks.
notebooks: $(STAMP)
	cd notebooks && for nb in [0-9][0-9]_*.ipynb; do \
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

# The tf engine's round on both stacks, interleaved by one script (needs both venvs).
benchmark-stacks:
	$(MAKE) setup STACK=reference
	$(MAKE) setup STACK=current
	.venv/bin/python benchmarks/bench_stacks.py --reference .venv/bin/python --current .venv-current/bin/python

# Repository tools in their own venv (no TensorFlow): the docs site and the linter.
TOOLS := .venv-tools
$(TOOLS)/.installed: requirements/tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade "pip==26.3"
	$(TOOLS)/bin/pip install --quiet -r requirements/tools.txt
	touch $@

# The docs site (docs/, mkdocs.yml) built strictly into build/site: a broken link, anchor or
# docstring reference fails.  Open build/site/index.html.
docs: $(TOOLS)/.installed
	NO_MKDOCS_2_WARNING=1 $(TOOLS)/bin/mkdocs build --strict

# The built site opened in headless Chromium (Debian's `chromium`; CI installs it): a missing
# site or browser fails here instead of skipping.
docs-test: docs $(STAMP)
	TFF_SER_DOCS_REQUIRED=1 $(VENV)/bin/python -m pytest tests/integration/test_docs.py

# pyflakes' errors (pyproject.toml, [tool.ruff]) and the import-layer contract (setup.cfg).
lint: $(TOOLS)/.installed $(STAMP)
	$(TOOLS)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean-venv:
	rm -rf $(VENV)
