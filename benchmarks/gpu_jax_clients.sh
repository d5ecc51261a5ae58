#!/bin/sh
# The GPU benchmark of engine="jax" as one device call (benchmarks/README.md):
#   prepare here:  .venv-current/bin/python benchmarks/bench_jax_clients.py prepare .device/jax_bench
#   run there:     device run, carry [".device/jax_bench"], command "sh benchmarks/gpu_jax_clients.sh"
# The machine has Python 3.12 with JAX (CUDA), NumPy, SciPy, pandas, no Keras: the carried
# wheels (keras, namex, optree) go into a folder on PYTHONPATH. The report lands in $OUT/jax_gpu.
set -e
OUT=${OUT:-results/benchmarks}
python3 -m pip install -q --no-index --no-deps --target /tmp/keras_wheels .device/jax_bench/wheels/*.whl
export PYTHONPATH=/tmp/keras_wheels:$PWD KERAS_BACKEND=jax
python3 -c "import jax, keras; print(jax.devices(), 'keras', keras.__version__)"
python3 benchmarks/bench_jax_clients.py run .device/jax_bench/bundle.npz "$OUT/jax_gpu" --reps 3
