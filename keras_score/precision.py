"""Mixed precision: the network computes in the policy's low precision, everything around it in full precision.

Under `keras.config.set_dtype_policy("mixed_bfloat16")` (or
`"mixed_float16"`), a `Denoiser`'s network computes in bfloat16 (float16)
with float32 weights, as every Keras layer does under that policy; the
preconditioning, the objective's loss, the sampler's state and the
likelihood stay in the policy's variable dtype, float32, since they divide
by small σ and square large ones (EDM keeps its sampler state in float64;
so does keras_score under a "float64" policy). `ScoreModel`, `Denoiser`
and the standardisation take this full-precision policy unless given a
`dtype`; a mixed `dtype` given to them is reduced to its variable dtype.

Example:
>>> keras.config.set_dtype_policy("mixed_bfloat16")
>>> full_precision_policy()
<DTypePolicy "float32">
"""

import keras


def full_precision_policy(dtype=None):
    """The float policy of `dtype`'s (default: the global policy's) variable dtype.

    Args:
        dtype: None, a dtype name, a policy name such as "mixed_float16", or
            a `keras.DTypePolicy`.

    Returns:
        A `keras.DTypePolicy` whose compute and variable dtypes are both the
        variable dtype (float32 for the mixed policies).
    """
    policy = keras.dtype_policies.get(keras.config.dtype_policy() if dtype is None else dtype)
    return keras.dtype_policies.get(policy.variable_dtype)
