"""The batched engine's graph: every sampled client's local steps at once on a client axis,
then the weighted mean and the server step (:class:`tff_ser.engines.batched.BatchedFedAvg`)."""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Sequence, Tuple, Union

import keras
import tensorflow as tf

from tff_ser.engines import optimizers
from tff_ser.layers import ReproducibleDropout


#: TFF 0.87 ``build_adam`` defaults, which :mod:`tff_ser.federated` uses on both sides.
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7

#: Client / server optimizers the engine implements, as in ``FederatedConfig``.
SUPPORTED_OPTIMIZERS = ("adam", "sgd")

_HIDDEN_ACTIVATIONS: Dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "linear": tf.identity,
    "relu": tf.nn.relu,
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
    "elu": tf.nn.elu,
}


# --------------------------------------------------------------------------
# the model, as a list of layers the engine knows how to batch
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DenseLayer:
    """A Keras Dense layer: ``activation(x @ kernel + bias)``."""

    name: str
    activation: str
    use_bias: bool


@dataclasses.dataclass(frozen=True)
class DropoutLayer:
    """A Keras ``Dropout`` or tff_ser ``ReproducibleDropout`` layer (training only)."""

    name: str
    rate: float


Layer = Union[DenseLayer, DropoutLayer]


def sequential_layers(model: keras.Model) -> Tuple[Layer, ...]:
    """The layers of a Sequential Dense/Dropout model with a softmax output.

    Parameters
    ----------
    model : keras.Sequential
        Built model, e.g. ``build_model("mlp")``.

    Returns
    -------
    tuple of DenseLayer and DropoutLayer
        In order; the last is a Dense layer with a softmax activation.

    Raises
    ------
    NotImplementedError
        For any other layer (Conv1D, LSTM, Flatten, ...), regularizers,
        constraints or non-trainable weights: such models must be trained
        with the TFF process (:func:`tff_ser.federated.train_federated`).
    """
    if not isinstance(model, keras.Sequential):
        raise NotImplementedError(
            f"BatchedFedAvg runs keras.Sequential models only; {model.name!r} is a "
            f"{type(model).__name__}. Train it with tff_ser.federated.train_federated.")
    layers: List[Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            for attr in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                         "kernel_constraint", "bias_constraint"):
                if getattr(layer, attr, None) is not None:
                    raise NotImplementedError(
                        f"layer {layer.name!r} has a {attr}, which BatchedFedAvg does not "
                        "implement; train this model with tff_ser.federated.train_federated.")
            layers.append(DenseLayer(layer.name, layer.activation.__name__, bool(layer.use_bias)))
        elif type(layer) in (keras.layers.Dropout, ReproducibleDropout):
            if getattr(layer, "noise_shape", None) is not None:
                raise NotImplementedError(
                    f"layer {layer.name!r} has a noise_shape, which BatchedFedAvg does not "
                    "implement; train this model with tff_ser.federated.train_federated.")
            layers.append(DropoutLayer(layer.name, float(layer.rate)))
        else:
            raise NotImplementedError(
                f"BatchedFedAvg runs Dense and Dropout layers only; layer {layer.name!r} is a "
                f"{type(layer).__name__}. Train model {model.name!r} with "
                "tff_ser.federated.train_federated (the TFF process).")
    if model.non_trainable_weights:
        raise NotImplementedError(
            f"model {model.name!r} has non-trainable weights, which BatchedFedAvg does not "
            "aggregate; train it with tff_ser.federated.train_federated.")
    if not layers or not isinstance(layers[-1], DenseLayer) or layers[-1].activation != "softmax":
        raise NotImplementedError(
            f"BatchedFedAvg needs a Dense softmax output layer last (the loss is Keras' "
            f"SparseCategoricalCrossentropy on its logits); model {model.name!r} ends with "
            f"{layers[-1] if layers else 'no layer'}.")
    for layer in layers[:-1]:
        if isinstance(layer, DenseLayer) and layer.activation not in _HIDDEN_ACTIVATIONS:
            raise NotImplementedError(
                f"hidden layer {layer.name!r} uses activation {layer.activation!r}; "
                f"BatchedFedAvg implements {sorted(_HIDDEN_ACTIVATIONS)}.")
    return tuple(layers)


# --------------------------------------------------------------------------
# the round, as TensorFlow
# --------------------------------------------------------------------------

class _ClientSlots:
    """Every sampled client's working copy of the model and its client optimizer.

    Variables, so the optimizer updates them in place: a fresh 20 MB tensor
    per weight per step (73 clients) costs more than the arithmetic.
    """

    def __init__(self, weight_shapes: Sequence[Tuple[int, ...]], num_clients: int):
        self.num_clients = num_clients

        def slot(shape, trainable=False):
            return tf.Variable(tf.zeros((num_clients,) + tuple(shape)), trainable=trainable)

        self.weights = [slot(s, trainable=True) for s in weight_shapes]
        self.accumulators = [slot(s) for s in weight_shapes]
        self.preconditioners = [slot(s) for s in weight_shapes]


def _per_client(v: tf.Tensor, rank: int) -> tf.Tensor:
    """(clients,) -> (clients, 1, ..., 1) broadcastable against a rank-``rank`` tensor."""
    return tf.reshape(v, [-1] + [1] * (rank - 1))


def _logits(layers: Sequence[Layer], weights: Sequence[tf.Tensor], inputs: tf.Tensor,
            seed: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """Logits of the softmax layer for (clients, batch, features) inputs, training mode."""
    h = inputs
    w = 0
    for position, layer in enumerate(layers):
        if isinstance(layer, DenseLayer):
            h = tf.linalg.matmul(h, weights[w])
            w += 1
            if layer.use_bias:
                h = h + weights[w][:, tf.newaxis, :]
                w += 1
            if position != len(layers) - 1:
                h = _HIDDEN_ACTIVATIONS[layer.activation](h)
        elif layer.rate > 0.0:
            layer_seed = tf.stack([seed[0], seed[1] + tf.cast(step, tf.int64) * len(layers)
                                   + position])
            keep = tf.random.stateless_uniform(tf.shape(h), layer_seed) >= layer.rate
            h = h * tf.cast(keep, h.dtype) * (1.0 / (1.0 - layer.rate))
    return h


def _adam_constants():
    return (tf.constant(ADAM_BETA_1, tf.float32), tf.constant(ADAM_BETA_2, tf.float32),
            tf.constant(ADAM_EPSILON, tf.float32))


def _all_finite(tensors: Sequence[tf.Tensor], axis_from: int) -> tf.Tensor:
    flags = [tf.reduce_all(tf.math.is_finite(t), axis=list(range(axis_from, t.shape.rank)))
             for t in tensors]
    return tf.reduce_all(tf.stack(flags), axis=0)


def _aggregate_and_apply(server_optimizer, weights, moments, step, trained, num_examples,
                         server_lr):
    """TFF's weighted mean of client updates, then the server optimizer step.

    Returns ``(weights, moments, step, client_weight, counted)``; ``counted``
    is 1 for clients whose update was finite (TFF keeps only their metrics).
    """
    # Client updates as TFF computes them: initial - trained, zeroed (weight 0) if non-finite.
    deltas = [w[tf.newaxis] - t for w, t in zip(weights, trained)]
    finite = _all_finite(deltas, axis_from=1)
    client_weight = tf.where(finite, num_examples, 0.0)
    deltas = [tf.where(_per_client(finite, d.shape.rank), d, tf.zeros_like(d)) for d in deltas]
    total_weight = tf.reduce_sum(client_weight)
    mean_update = [tf.reduce_sum(d * _per_client(client_weight, d.shape.rank), axis=0)
                   / total_weight for d in deltas]
    # The server optimizer treats the mean update as a gradient; TFF's finalizer
    # rejects (skips) a non-finite one.
    accept = tf.reduce_all(_all_finite(mean_update, axis_from=0))
    new_step = step + 1
    if server_optimizer == "adam":
        # TFF 0.87's build_adam, term for term (tff_ser.engines.optimizers)
        new_weights, accumulator, preconditioner = optimizers.apply(
            optimizers.optimizer_spec("adam"), server_lr, new_step, weights, moments[0],
            moments[1], mean_update)
        new_moments = (accumulator, preconditioner)
    else:
        new_weights = [w - server_lr * g for w, g in zip(weights, mean_update)]
        new_moments = moments

    def keep(new, old):
        return tuple(tf.where(accept, n, o) for n, o in zip(new, old))

    return (keep(new_weights, weights),
            (keep(new_moments[0], moments[0]), keep(new_moments[1], moments[1])),
            tf.where(accept, new_step, step), client_weight, tf.cast(finite, tf.float32))


# The aggregation reads every client's weights once; XLA makes that one fused pass.
_AGGREGATE_XLA = tf.function(_aggregate_and_apply, jit_compile=True)


def _after(dependencies, tensors):
    with tf.control_dependencies(dependencies):
        return [tf.identity(t) for t in tensors]


def _fedavg_round(layers, client_optimizer, server_optimizer, slots, aggregate, x, y, weights,
                  moments, step, clip_index, clip_mask, num_examples, last_step, num_steps,
                  seed, client_lr, server_lr):
    beta_1, beta_2, epsilon = _adam_constants()
    for var, w in zip(slots.weights, weights):
        var.assign(tf.broadcast_to(w[tf.newaxis], var.shape))
    if client_optimizer == "adam":
        # TFF builds a fresh client optimizer every round.
        for var in slots.accumulators + slots.preconditioners:
            var.assign(tf.zeros(var.shape))
    loss_sum = tf.zeros([slots.num_clients])
    correct = tf.zeros([slots.num_clients])
    for k in tf.range(num_steps):
        index, mask = clip_index[:, k], clip_mask[:, k]
        inputs, labels = tf.gather(x, index), tf.gather(y, index)
        count = tf.reduce_sum(mask, axis=1)
        with tf.GradientTape() as tape:
            logits = _logits(layers, slots.weights, inputs, seed, k)
            per_clip = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits) * mask
            # Keras' SUM_OVER_BATCH_SIZE over each client's real clips only.
            objective = tf.reduce_sum(tf.reduce_sum(per_clip, axis=1) / tf.maximum(count, 1.0))
        grads = tape.gradient(objective, slots.weights)
        hits = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels),
                       tf.float32)
        loss_sum += tf.reduce_sum(per_clip, axis=1)
        correct += tf.reduce_sum(hits * mask, axis=1)
        # Local steps are a prefix of the step axis, so every client still
        # training takes its (k+1)-th Adam step here: one scalar step size
        # serves all.  A client past its last step has a zero gradient; with
        # its first moment zeroed too (below), Adam leaves its weights exactly
        # as they are (w - lr * 0 / (sqrt(v) + eps) == w), and SGD does anyway.
        # Updates wait for every gradient: updating in place while a backward
        # product still reads the weights would copy them first.
        grads = _after(grads, grads)
        if client_optimizer == "adam":
            t = tf.cast(k + 1, tf.float32)
            beta_1_power, beta_2_power = tf.math.pow(beta_1, t), tf.math.pow(beta_2, t)
            for w, a, p, g in zip(slots.weights, slots.accumulators, slots.preconditioners,
                                  grads):
                tf.raw_ops.ResourceApplyAdam(
                    var=w.handle, m=a.handle, v=p.handle, beta1_power=beta_1_power,
                    beta2_power=beta_2_power, lr=client_lr, beta1=beta_1, beta2=beta_2,
                    epsilon=epsilon, grad=g)
            # A dense masked pass, only at steps where some client stops: a
            # sparse row update would leave the variable copying at every update.
            stops = tf.logical_and(tf.equal(last_step, k), k + 1 < num_steps)
            if tf.reduce_any(stops):
                carry_on = 1.0 - tf.cast(stops, tf.float32)
                for a in slots.accumulators:
                    a.assign(a * _per_client(carry_on, a.shape.rank))
        else:
            for w, g in zip(slots.weights, grads):
                tf.raw_ops.ResourceApplyGradientDescent(var=w.handle, alpha=client_lr, delta=g)
    new_weights, new_moments, new_step, client_weight, counted = aggregate(
        server_optimizer, list(weights), (list(moments[0]), list(moments[1])), step,
        [w.read_value() for w in slots.weights], num_examples, server_lr)
    # TFF resets the training metrics of a client whose update was non-finite.
    metrics = tf.stack([tf.reduce_sum(loss_sum * counted), tf.reduce_sum(correct * counted),
                        tf.reduce_sum(client_weight)])
    return new_weights, new_moments, new_step, metrics


#: Engines :meth:`BatchedFedAvg.shared` keeps per process (each holds its task's clips).
