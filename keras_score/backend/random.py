"""Counter-based normal noise from a seed tensor, usable inside compiled loops."""

import keras


def stateless_normal(shape, seed, counter, dtype="float32"):
    """Standard normal noise determined by the pair (seed, counter).

    `keras.random` needs a Python int or a `SeedGenerator`, neither of which
    can change inside a compiled loop on every backend; this function takes
    the loop counter instead.

    Args:
        shape: output shape.
        seed: integer scalar tensor.
        counter: integer (scalar tensor or Python int), e.g. the step index.
        dtype: output dtype.

    Returns:
        A tensor of standard normal values; equal arguments give equal values
        on the same backend.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        key = jax.random.fold_in(jax.random.PRNGKey(seed), counter)
        return jax.random.normal(key, shape, dtype=dtype)
    if backend == "tensorflow":
        import tensorflow as tf

        pair = tf.stack([tf.cast(seed, tf.int64), tf.cast(counter, tf.int64)])
        return tf.random.stateless_normal(shape, seed=pair, dtype=dtype)
    if backend == "torch":
        import torch

        generator = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(counter)) % 2**63)
        noise = torch.randn(tuple(shape), generator=generator, dtype=getattr(torch, keras.backend.standardize_dtype(dtype)))
        return noise.to(keras.ops.zeros(()).device)
    raise NotImplementedError(f"Backend {backend!r} is not supported.")
