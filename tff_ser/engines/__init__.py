"""Who computes a FedAvg round: engines that run the same rounds, one module each.

:func:`tff_ser.federated.train_federated` is the loop; an engine computes the
rounds behind the small protocol of :mod:`tff_ser.engines.base`.  Every
engine trains the same sampled clients on the same batches
(:mod:`tff_ser.fedconfig`), and each fast engine is proven equal to the TFF
process by a test.

Engines
-------
``"tff"`` -- :mod:`tff_ser.engines.tff_process`
    TFF 0.87's ``build_weighted_fed_avg`` with separate client and server
    optimizers: the papers' tool and the reference.  ~27 ms fixed cost per
    client per round, more for big models (the model is shipped through
    TFF's executor); CPU only.
``"batched"`` -- :class:`~tff_ser.engines.batched.BatchedFedAvg`
    All sampled clients stacked on a leading client axis; Sequential models
    of Dense and Dropout layers (paper 000's MLP).  Proof:
    ``tests/integration/test_engine_equivalence.py``.
``"tf"`` -- :class:`~tff_ser.engines.plain_tf.PlainTFFedAvg`
    Plain TensorFlow, clients one after another in one traced function over
    one Keras model; every model, every named optimizer
    (:mod:`~tff_ser.engines.optimizers`), FedAvg and FedProx, and TFF's
    robust, compression and DP aggregators
    (:mod:`~tff_ser.engines.aggregators`); CPU or GPU, with or without TFF
    installed.  Proofs: ``tests/integration/test_plain_tf_engine.py``,
    ``tests/integration/test_recipes_without_tff.py``, ``tests/integration/test_aggregators_without_tff.py``.

``engine="auto"`` (:func:`~tff_ser.engines.base.choose_engine`) takes the
first of batched, tf that implements the model and configuration, and TFF's
process only for an optimizer or aggregator object of the user's own.
"""
from tff_ser.engines.base import ENGINE_NAMES, EngineUnsupported, choose_engine

__all__ = ["BatchedFedAvg", "ENGINE_NAMES", "EngineState", "EngineUnsupported", "choose_engine"]


def __getattr__(name):
    # The engines import TensorFlow; keep `import tff_ser.engines` (and the
    # configs and CLI that read ENGINE_NAMES) light.
    if name in ("BatchedFedAvg", "EngineState"):
        from tff_ser.engines import batched
        return getattr(batched, name)
    raise AttributeError(f"module 'tff_ser.engines' has no attribute {name!r}")
