"""Data parallelism: sharding a batch over a `keras.distribution` (JAX); the `tf.distribute` scope and replicas (TensorFlow)."""

import contextlib

import keras


def batch_devices():
    """The number of devices a batch is split over by the active distribution (1 without one).

    Keras' distribution API (`keras.distribution.DataParallel`,
    `ModelParallel`) runs on JAX; on the other backends this is 1.
    """
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
        return 1
    distribution = keras.distribution.distribution()
    mesh = distribution.device_mesh
    return int(mesh.shape[mesh.axis_names.index(distribution.batch_dim_name)])


def check_batches(rows, batch_size, rows_argument):
    """Raises a `ValueError` naming the argument if a batch of `rows` in batches of `batch_size` does not split.

    Both the full batches and the last one (`rows % batch_size` rows, when
    not 0) must split evenly over the devices of the active distribution.

    Args:
        rows: the number of examples, e.g. `num_samples` or `len(x)`.
        batch_size: examples per batch.
        rows_argument: how `rows` is named in the message ("num_samples", "len(x)").
    """
    devices = batch_devices()
    last = rows % batch_size or batch_size
    for size, argument in ((batch_size, "batch_size"), (last, f"{rows_argument} % batch_size (the last batch)")):
        if size % devices:
            raise ValueError(
                f"`{argument}` must be a multiple of the {devices} devices of the active keras.distribution "
                f"(each device takes an equal share of the batch); received {size}."
            )


def distribute_batch(tensors, batch_size):
    """Lays out each tensor of `tensors` whose first dimension is `batch_size` across the devices.

    Under a `keras.distribution` on JAX, such a tensor is split along its
    first axis by the distribution's data layout, so a compiled function
    fed with it runs on every device; other tensors, and every tensor
    without a distribution, are returned as they are.

    Args:
        tensors: a structure of tensors (a dict, a list, or one tensor).
        batch_size: the batch's size.

    Returns:
        The same structure.

    Example:
    >>> keras.distribution.set_distribution(keras.distribution.DataParallel())
    >>> noise = distribute_batch(keras.ops.zeros((64, 2)), 64)  # 16 rows on each of 4 devices
    """
    if batch_devices() == 1:
        return tensors
    distribution = keras.distribution.distribution()

    def lay_out(tensor):
        if len(tensor.shape) == 0 or tensor.shape[0] != batch_size:
            return tensor
        return keras.distribution.distribute_tensor(tensor, distribution.get_data_layout(tensor.shape))

    return keras.tree.map_structure(lay_out, tensors)


def strategy_scope(model):
    """The scope in which `model` creates variables: its `tf.distribute` strategy's on TensorFlow.

    A model built under `strategy.scope()` on TensorFlow creates its
    variables (the weights it builds lazily at the first `fit`, the
    optimizer's) as the strategy's mirrored variables only inside that scope.

    Args:
        model: a Keras model.

    Returns:
        A context manager (a no-op on JAX and PyTorch).

    Example:
    >>> with strategy_scope(model):
    ...     model.optimizer.build(model.trainable_variables)
    """
    strategy = getattr(model, "distribute_strategy", None) if keras.backend.backend() == "tensorflow" else None
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def scale_loss_for_replicas(loss):
    """The loss divided by the number of `tf.distribute` replicas (TensorFlow), as Keras' own losses are.

    Each replica's gradient is summed across replicas, so a per-replica mean
    loss scaled by 1/replicas gives the gradient of the global batch's mean.
    Keras' TensorFlow trainer unscales the reported loss again. Elsewhere
    the loss is returned as it is.

    Args:
        loss: a scalar tensor, the mean over this replica's examples.

    Returns:
        The scaled loss.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss * (1.0 / replicas)


def replica_seed_generator(generator):
    """`generator`, or inside a `tf.distribute` replica context of several replicas, a view giving each replica its own draws.

    A `MirroredStrategy`'s replicas share one mirrored generator state, so
    `keras.random.normal(shape, seed=generator)` would draw the *same*
    noise on every replica for its share of the batch. The view folds the
    replica's id into each drawn seed (and advances the shared state as the
    generator does), so the shares get independent noise, as on one device.
    Outside such a context (JAX, PyTorch, one replica) `generator` itself is
    returned.

    Args:
        generator: a `keras.random.SeedGenerator`.

    Returns:
        A `keras.random.SeedGenerator` to pass as `seed=`.

    Example:
    >>> seed = replica_seed_generator(model.seed_generator)  # in compute_loss
    >>> noise = keras.random.normal((batch_size, 2), seed=seed)
    """
    if keras.backend.backend() != "tensorflow":
        return generator
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return generator
    return _ReplicaSeedGenerator(generator, context.replica_id_in_sync_group)


class _ReplicaSeedGenerator(keras.random.SeedGenerator):
    """The draws of a shared `SeedGenerator` with a replica's id folded into each seed; no state of its own."""

    def __init__(self, generator, replica_id):  # no super().__init__: the wrapped generator holds the state
        self.generator = generator
        self.replica_id = replica_id

    def next(self, ordered=True):
        seed = self.generator.next(ordered)
        # A large odd stride keeps replica r's seeds apart from the generator's neighbouring seeds.
        offset = keras.ops.cast(self.replica_id, seed.dtype) * 1_000_003
        return seed + keras.ops.stack([offset, keras.ops.zeros_like(offset)])
