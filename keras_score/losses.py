"""Training objectives.

`denoising_score_matching` is the objective of NCSN, DDPM, score SDEs and EDM
in one form (Vincent 2011; Song & Ermon 2019, Eq. 2; Karras et al. 2022, Eq. 8):

    E_{t, x₀, ε} λ(t)·‖D(α·x₀ + σ·ε, t) − x₀‖²,

computed on the network output as λ·c_out²·‖F − target‖², which is the same
number without dividing by a c_out that may be tiny.
"""

import keras
from keras import ops

from keras_score.sde import expand_to


def denoising_score_matching(model, x0, seed, condition=None):
    """Per-example weighted denoising score-matching loss.

    Args:
        model: a `ScoreModel` (its schedule, parameterization, weighting,
            noise-level distribution and `network_output` are used).
        x0: clean data in the model's normalised space, shape (batch, ...).
        seed: a `keras.random.SeedGenerator` for t and ε.
        condition: for a conditional model, the dict of "labels", "context"
            and "drop" tensors its `ConditionEmbedding` reads; None otherwise.

    Returns:
        Tensor of shape (batch,): λ(t)·c_out²·mean‖F − target‖² per example.

    Example:
    >>> per_example = denoising_score_matching(model, x0, model.seed_generator)
    """
    schedule = model.schedule
    batch_size = ops.shape(x0)[0]
    t = model.noise_distribution.sample(batch_size, schedule, seed=seed)
    noise = keras.random.normal(ops.shape(x0), seed=seed)
    alpha = expand_to(schedule.alpha(t), x0)
    sigma = expand_to(schedule.sigma(t), x0)
    x_t = alpha * x0 + sigma * noise
    output = model.network_output(x_t, t, condition, training=True)
    target = model.parameterization.target(x0, noise, x_t, alpha, sigma)
    _, c_out = model.parameterization.coefficients(alpha, sigma)
    weight = model.weighting(t, schedule, model.parameterization.sigma_data)
    error = ops.square(c_out * (ops.cast(output, x0.dtype) - target))
    axes = tuple(range(1, len(x0.shape)))
    return weight * ops.mean(error, axis=axes)
