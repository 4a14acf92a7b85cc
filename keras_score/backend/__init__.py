"""The one place where keras_score branches on the Keras backend.

Everything else in the library is written with `keras.ops` and
`keras.random`. Two things cannot be: compiling a whole sampling loop
(`jax.jit` with stateless variables, `tf.function`, eager `torch.no_grad`)
and drawing noise from a seed tensor inside that loop.
"""

from keras_score.backend.compile import compile_function
from keras_score.backend.random import stateless_normal

__all__ = ["compile_function", "stateless_normal"]
