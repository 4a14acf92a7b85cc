"""The Fisher divergence of a learned score to a reference score, over noise levels."""

import numpy as np
from keras import ops


def fisher_divergence(score, reference, data, schedule, times, seed=0, per_dimension=False):
    """(1/L)·Σ_l σ(t_l)²·E‖score(x_t, t_l) − reference(x_t, t_l)‖² at x_t = α·x₀ + σ·ε.

    NCSN's weighted Fisher divergence (Song & Ermon 2019, Eq. 2 with
    λ(σ) = σ², the weighting under which every level counts alike): the
    score-matching error of a model against the exact score of the noised
    data (e.g. `GaussianMixture.score`), at fresh perturbations of held-out
    points x₀.

    Args:
        score: the score to measure, `score(x, t)` (e.g. `model.score`).
        reference: the true score `reference(x, t)` (e.g.
            `lambda x, t: mixture.score(x, t, schedule)`).
        data: clean held-out points x₀, shape (n, ...), in the space both scores work in.
        schedule: the `NoiseSchedule` of the noise levels.
        times: the L times t_l.
        seed: seed of the perturbation noise ε.
        per_dimension: divide by the number of coordinates of an example.

    Returns:
        float.

    Example:
    >>> fisher_divergence(model.score, lambda x, t: mixture.score(x, t, model.schedule),
    ...                   mixture.sample(2048, seed=1), model.schedule, np.linspace(0.0, 1.0, 6))

    Reference: Song & Ermon, "Generative Modeling by Estimating Gradients of
    the Data Distribution", NeurIPS 2019; Hyvärinen, "Estimation of
    Non-Normalized Statistical Models by Score Matching", JMLR 2005.
    """
    x0 = np.asarray(data, dtype=np.float64)
    rng = np.random.default_rng(seed)
    axes = tuple(range(1, x0.ndim))
    divergences = []
    for t in times:
        t = float(t)
        alpha = float(ops.convert_to_numpy(schedule.alpha(ops.convert_to_tensor(t))))
        sigma = float(ops.convert_to_numpy(schedule.sigma(ops.convert_to_tensor(t))))
        x_t = ops.convert_to_tensor((alpha * x0 + sigma * rng.standard_normal(x0.shape)).astype("float32"))
        error = ops.convert_to_numpy(score(x_t, t)) - ops.convert_to_numpy(reference(x_t, t))
        divergences.append(sigma**2 * np.mean(np.sum(np.square(error), axis=axes)))
    value = float(np.mean(divergences))
    return value / int(np.prod(x0.shape[1:])) if per_dimension else value
