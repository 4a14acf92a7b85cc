"""Samplers of the reverse-time SDE dx = [f·x − g²·∇log p_t(x)] dt + g dw̄."""

import keras
from keras import ops

from keras_score.samplers.base import Sampler, score_from_denoised
from keras_score.sde import expand_to


@keras.saving.register_keras_serializable(package="keras_score")
class EulerMaruyama(Sampler):
    """Euler–Maruyama on the reverse-time SDE (Song et al. 2021, Eq. 6 and App. G).

    x ← x − [f·x − g²·s(x, t)]·Δt + g·sqrt(Δt)·z with Δt = t − t_next > 0. The
    last step adds no noise and returns the mean, as score_sde's
    `denoise=True`.
    """

    name = "euler_maruyama"
    stochastic = True

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        dt = t_cur - t_next
        score = score_from_denoised(schedule, x, t_cur, denoise(x, t_cur))
        f = expand_to(schedule.drift_coefficient(t_cur), x)
        g2 = expand_to(schedule.diffusion_squared(t_cur), x)
        x_mean = x - (f * x - g2 * score) * dt
        if final is not None:
            return x_mean, state
        return x_mean + ops.sqrt(g2 * dt) * noise(), state
