"""Classifier-free guidance: extrapolating from the unconditional toward the conditional denoiser."""


def classifier_free_guidance(conditional, unconditional, scale):
    """D̃ = D_uncond + w·(D_cond − D_uncond) (Ho & Salimans 2022, Eq. 6, on the denoiser).

    In scores, s̃ = s_uncond + w·(s_cond − s_uncond) = ∇log p_t(x) + w·∇log p_t(c | x):
    w = 1 samples the conditional model, w = 0 the unconditional one and
    w > 1 sharpens the condition like classifier guidance with scale w. The
    combination is linear, so it may equally be applied to network outputs
    of any parameterization. `ScoreModel.generate(labels=..., guidance_scale=w)`
    uses it with both denoisers from one batched network call.

    Args:
        conditional: D(x, t | c), a tensor.
        unconditional: D(x, t), a tensor of the same shape.
        scale: the guidance scale w.

    Returns:
        The guided denoiser value.

    Example:
    >>> classifier_free_guidance(ops.ones((2,)), ops.zeros((2,)), 3.0)  # [3., 3.]

    Reference: Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022.
    """
    return unconditional + scale * (conditional - unconditional)
