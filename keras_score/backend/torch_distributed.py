"""PyTorch data parallelism over `torch.distributed`: gradients averaged across processes inside Keras' `fit`."""

import keras


def average_gradients_across_processes(model):
    """Makes `model.fit` on PyTorch train data-parallel over the initialised `torch.distributed` group.

    Rank 0's variables are broadcast to every process, then a hook on each
    trainable weight replaces its gradient, during every backward pass, by
    the mean of that gradient over the processes (`all_reduce`), before
    Keras' optimizer applies it. Each process then runs `model.fit` on its
    own shard of the data with the same batch size; the weights stay equal
    on every process, and the EMA, the checkpoint and the divergence guard
    work as on one process. This is DDP's synchronous gradient averaging
    without its bucketing and overlap with the backward pass: one
    collective per weight per step, fine for CPU (gloo) and moderate GPU
    runs; Keras' torch trainer has no DDP integration of its own.

    Args:
        model: a built `ScoreModel` (or any Keras model) on the torch backend.

    Raises:
        ValueError: on another backend, or without an initialised process group.

    Example:
    ```python
    torch.distributed.init_process_group("gloo")  # RANK, WORLD_SIZE, MASTER_ADDR/PORT from the launcher
    model.build((None, 2))
    keras_score.backend.average_gradients_across_processes(model)
    model.fit(shard_of_the_data, batch_size=128)   # each process its shard
    ```
    """
    if keras.backend.backend() != "torch":
        raise ValueError("`average_gradients_across_processes` is for the torch backend; on JAX use "
                         "keras.distribution.DataParallel, on TensorFlow a tf.distribute strategy.")
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise ValueError("Initialise torch.distributed first (torch.distributed.init_process_group).")
    world_size = dist.get_world_size()
    for variable in model.variables:  # the weights, and buffers such as random Fourier frequencies
        dist.broadcast(variable.value.data, src=0)

    def average(gradient):
        gradient = gradient.clone()
        dist.all_reduce(gradient)
        return gradient / world_size

    for variable in model.trainable_variables:
        variable.value.register_hook(average)
