"""Training engines that run the same FedAvg math as the TFF process, faster.

:mod:`tff_ser.federated` runs FedAvg through TFF 0.87, which costs a fixed
~27 ms per client per round on a CPU whatever the model size; paper 000's
grid (576 runs of 50-200 rounds) would take days that way.  An engine here
computes the very same rounds -- same sampled clients, same clip order, same
client and server optimizers, same weighted aggregation -- in one TensorFlow
graph per round.  ``tests/test_engine_equivalence.py`` is the proof that the
weights agree with TFF's after every round.

Engines
-------
:class:`~tff_ser.engines.batched.BatchedFedAvg`
    All sampled clients stacked on a leading client axis; for Sequential
    models of Dense and Dropout layers (paper 000's MLP).
"""
from tff_ser.engines.batched import BatchedFedAvg, EngineState

__all__ = ["BatchedFedAvg", "EngineState"]
