"""The one place where keras_score branches on the Keras backend.

Everything else in the library is written with `keras.ops` and
`keras.random`. Six things cannot be: compiling a whole sampling loop
(`jax.jit` with stateless variables, `tf.function`, eager `torch.no_grad`),
drawing noise from a seed tensor inside that loop, derivatives with
respect to the inputs (for guidance, and inside the score-matching losses,
differentiable again w.r.t. the weights), restoring a model's variables
after a failed `fit` (JAX purges them during training), updating a
model's own variables after the optimiser step inside the compiled
training step (stateless on JAX), and laying a batch out across the
devices of a `keras.distribution` (JAX), entering a model's
`tf.distribute` strategy scope and giving its replicas their own noise (TensorFlow) or averaging gradients over
`torch.distributed` processes (PyTorch).
"""

from keras_score.backend.autodiff import check_second_derivatives, gradient, vector_jacobian_product
from keras_score.backend.compile import compile_function
from keras_score.backend.distribute import (
    batch_devices,
    check_batches,
    distribute_batch,
    replica_seed_generator,
    scale_loss_for_replicas,
    strategy_scope,
)
from keras_score.backend.random import stateless_normal
from keras_score.backend.state import restore_on_error
from keras_score.backend.torch_distributed import average_gradients_across_processes
from keras_score.backend.train_step import train_step_then

__all__ = [
    "average_gradients_across_processes",
    "batch_devices",
    "check_batches",
    "distribute_batch",
    "check_second_derivatives",
    "compile_function",
    "gradient",
    "replica_seed_generator",
    "restore_on_error",
    "scale_loss_for_replicas",
    "stateless_normal",
    "strategy_scope",
    "train_step_then",
    "vector_jacobian_product",
]
