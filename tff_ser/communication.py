"""Communication cost of a federated round: bytes sent to and from the clients.

Paper 000 names communication as a next objective of its HPO.  What a round
of TFF's FedAvg moves, per sampled client:

* **down** (server -> client): the global model, every trainable and
  non-trainable weight, as float32 (TFF broadcasts ``ModelWeights``);
* **up** (client -> server): the model update, one float32 per trainable
  weight -- or, with ``aggregator="compression"``
  (``tff.learning.compression_aggregator``), each tensor of more than
  20,000 elements uniformly quantized to 8 bits and bit-packed into int32
  words plus its float32 min and max (TFF's
  ``EncodedSumFactory.quantize_above_threshold(quantization_bits=8,
  threshold=20000)``), smaller tensors as float32.

Not counted: the client's weight scalar, its metric sums and the
adaptive-clipping / zeroing norm estimates (a few scalars per client),
and any transport framing.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np

FLOAT32_BYTES = 4
#: TFF 0.87 compression_aggregator's quantization (model_update_aggregator.py).
QUANTIZATION_BITS = 8
QUANTIZATION_THRESHOLD = 20000


def tensor_bytes(shapes: Sequence[Sequence[int]]) -> int:
    """float32 bytes of tensors of these shapes."""
    return int(sum(FLOAT32_BYTES * int(np.prod(s, dtype=np.int64)) for s in shapes))


def quantized_bytes(shapes: Sequence[Sequence[int]], *, bits: int = QUANTIZATION_BITS,
                    threshold: int = QUANTIZATION_THRESHOLD) -> int:
    """Bytes of an update under TFF's ``quantize_above_threshold`` encoding."""
    total = 0
    for s in shapes:
        n = int(np.prod(s, dtype=np.int64))
        if n > threshold:
            total += FLOAT32_BYTES * math.ceil(n * bits / 32) + 2 * FLOAT32_BYTES
        else:
            total += FLOAT32_BYTES * n
    return int(total)


def per_client_bytes(trainable_shapes, non_trainable_shapes, *, compressed: bool) -> Dict[str, int]:
    """``{"down": bytes, "up": bytes}`` one client receives and sends in a round."""
    down = tensor_bytes(list(trainable_shapes) + list(non_trainable_shapes))
    up = quantized_bytes(trainable_shapes) if compressed else tensor_bytes(trainable_shapes)
    return {"down": down, "up": up}


def round_bytes(weights, clients: int, *, compressed: bool) -> Dict[str, int]:
    """Bytes of one round with ``clients`` sampled clients (``weights``: (trainable, non_trainable))."""
    trainable, non_trainable = weights
    one = per_client_bytes([np.shape(w) for w in trainable], [np.shape(w) for w in non_trainable],
                           compressed=compressed)
    return {"bytes_down": clients * one["down"], "bytes_up": clients * one["up"]}
