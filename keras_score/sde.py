"""The forward SDE of a noise schedule, its reverse and its probability-flow ODE.

For x_t = α(t)·x₀ + σ(t)·ε the forward process is the linear SDE

    dx = f(t)·x dt + g(t) dw,   f = d log α/dt,   g² = dσ²/dt − 2·f·σ²,

its reverse-time SDE is dx = [f·x − g²·∇log p_t(x)] dt + g dw̄ and its
probability-flow ODE is dx/dt = f·x − ½·g²·∇log p_t(x)
(Song et al., "Score-Based Generative Modeling through Stochastic Differential
Equations", ICLR 2021, Eqs. 5, 6 and 13).
"""

import math

import keras
from keras import ops

from keras_score import schedules as schedules_lib


def expand_to(v, x):
    """Reshapes a scalar or per-example `v` of shape (batch,) to broadcast against `x`."""
    v = ops.convert_to_tensor(v, dtype=x.dtype)
    if len(v.shape) == 0:
        return v
    return ops.reshape(v, (-1,) + (1,) * (len(x.shape) - 1))


@keras.saving.register_keras_serializable(package="keras_score")
class SDE:
    """The forward SDE of a `NoiseSchedule` and the processes derived from it.

    Args:
        schedule: a `NoiseSchedule` or its name ("ve", "vp", "sub_vp", "cosine", "edm").

    Example:
    >>> sde = SDE("vp")
    >>> mean, std = sde.marginal(ops.ones((2, 3)), 0.5)
    >>> reverse = sde.reverse(lambda x, t: -x, probability_flow=True)

    Reference: Song et al. 2021, Sec. 3 and App. B-D.
    """

    def __init__(self, schedule="vp"):
        self.schedule = schedules_lib.get(schedule)

    @property
    def T(self):
        return self.schedule.t_max

    def drift(self, x, t):
        """f(t)·x."""
        return expand_to(self.schedule.drift_coefficient(t), x) * x

    def diffusion(self, t):
        """g(t)."""
        return ops.sqrt(self.schedule.diffusion_squared(t))

    def marginal(self, x0, t):
        """Mean α(t)·x₀ and standard deviation σ(t) of p(x_t | x₀)."""
        return expand_to(self.schedule.alpha(t), x0) * x0, self.schedule.sigma(t)

    def prior_std(self):
        """Standard deviation of the prior N(0, σ(T)²·I) at t = T."""
        return float(ops.convert_to_numpy(self.schedule.sigma(self.T)))

    def prior_sample(self, shape, seed=None):
        """Draws from the prior N(0, σ(T)²·I)."""
        return self.prior_std() * keras.random.normal(shape, seed=seed)

    def prior_log_prob(self, z):
        """Log-density of the prior at `z`, summed over all but the batch axis."""
        std = self.prior_std()
        axes = tuple(range(1, len(z.shape)))
        dim = math.prod(z.shape[1:])
        return -0.5 * dim * math.log(2 * math.pi * std**2) - 0.5 * ops.sum(z**2, axis=axes) / std**2

    def reverse(self, score_fn, probability_flow=False):
        """The reverse-time SDE (or probability-flow ODE) for a score function.

        Args:
            score_fn: callable `score_fn(x, t) -> ∇ₓ log p_t(x)`.
            probability_flow: return the probability-flow ODE (zero diffusion).

        Returns:
            A `ReverseSDE` with `drift(x, t)` and `diffusion(t)`, to be
            integrated from t = T down to t = 0.
        """
        return ReverseSDE(self, score_fn, probability_flow)

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]))


class ReverseSDE:
    """dx = [f·x − c·g²·∇log p_t(x)] dt + [c = 1] g dw̄, c = ½ for the ODE.

    Args:
        sde: the forward `SDE`.
        score_fn: callable `score_fn(x, t)`.
        probability_flow: whether this is the probability-flow ODE.
    """

    def __init__(self, sde, score_fn, probability_flow=False):
        self.sde = sde
        self.score_fn = score_fn
        self.probability_flow = probability_flow

    def drift(self, x, t):
        coefficient = 0.5 if self.probability_flow else 1.0
        g2 = expand_to(self.sde.schedule.diffusion_squared(t), x)
        return self.sde.drift(x, t) - coefficient * g2 * self.score_fn(x, t)

    def diffusion(self, t):
        if self.probability_flow:
            return ops.zeros_like(ops.convert_to_tensor(t, dtype=keras.config.floatx()))
        return self.sde.diffusion(t)
