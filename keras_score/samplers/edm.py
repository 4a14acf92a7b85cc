"""The deterministic and stochastic samplers of Karras et al. 2022 (EDM, Alg. 1 and 2).

EDM writes x = s(t)·x̃ with x̃ of noise level σ̃; for x_t = α·x₀ + σ·ε that is
s = α and σ̃ = σ/α, in which the probability-flow ODE of every schedule is
dx̃/dσ̃ = (x̃ − D(x; t))/σ̃ (Karras et al. 2022, Eq. 4 with s = α). Both
samplers step in σ̃ like Alg. 1 and 2 with σ(t) = t, s(t) = 1, and call the
denoiser at the schedule's time t of each σ̃ on x = α(t)·x̃, so they work for
VP, VE, sub-VP, cosine and EDM schedules alike; for EDM (α = 1, σ = t) they
are Alg. 1 and 2 line by line.
"""

import math

import keras
from keras import ops

from keras_score.samplers.base import Sampler
from keras_score.validation import check_float, check_positive_float


def _heun_in_sigma(denoise, schedule, x_hat, t_hat, sigma_hat, t_next, final):
    """Alg. 1, lines 4-11: Heun in σ̃ from x̃ at σ̃_hat (time t_hat) to t_next; Euler when σ̃_next = 0."""
    alpha_next = schedule.alpha(t_next)
    sigma_next = schedule.sigma(t_next) / alpha_next
    d_cur = (x_hat - denoise(schedule.alpha(t_hat) * x_hat, t_hat)) / sigma_hat
    x_next = x_hat + (sigma_next - sigma_hat) * d_cur
    if final:
        return alpha_next * x_next
    d_prime = (x_next - denoise(alpha_next * x_next, t_next)) / sigma_next
    return alpha_next * (x_hat + (sigma_next - sigma_hat) * (0.5 * d_cur + 0.5 * d_prime))


@keras.saving.register_keras_serializable(package="keras_score")
class EDMHeun(Sampler):
    """Karras et al.'s deterministic sampler: Heun's method in σ̃ = σ/α (Alg. 1).

    With x̃ = x/α, d = (x̃ − D)/σ̃, x̃' = x̃ + (σ̃_next − σ̃)·d and
    x̃_next = x̃ + (σ̃_next − σ̃)·(½d + ½d'), d' evaluated at x̃'. The last step
    is an Euler step when it lands at σ = 0 (line 8), so N steps cost 2N − 1
    evaluations. Unlike `Heun`, which integrates the ODE in t, the step is
    taken in σ̃, where the ODE is the same for every schedule and nearly
    linear for the Karras grid.

    Example:
    >>> x = EDMHeun().sample(denoise, x_T, schedule, steps=18)  # 35 evaluations

    Reference: Karras et al., "Elucidating the Design Space of Diffusion-Based
    Generative Models", NeurIPS 2022, Alg. 1 and Eq. 4.
    """

    name = "edm_heun"

    def num_function_evals(self, steps, ends_at_zero=True):
        return 2 * steps - int(ends_at_zero)

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        alpha_cur = schedule.alpha(t_cur)
        sigma_cur = schedule.sigma(t_cur) / alpha_cur
        return _heun_in_sigma(denoise, schedule, x / alpha_cur, t_cur, sigma_cur, t_next, final), state


@keras.saving.register_keras_serializable(package="keras_score")
class EDMStochastic(EDMHeun):
    """Karras et al.'s stochastic sampler (Alg. 2): churn, then a Heun step in σ̃.

    Each step with S_tmin ≤ σ̃_i ≤ S_tmax first raises the noise level to
    t̂ = (1 + γ)·σ̃_i, γ = min(S_churn/N, √2 − 1), by adding fresh noise:
    x̃_hat = x̃ + sqrt(t̂² − σ̃_i²)·S_noise·ε, then takes the `EDMHeun` step from
    t̂ to σ̃_{i+1} (Euler on a last step to σ = 0). The denoiser is called at
    the schedule time of t̂, found with `t_from_log_snr(−2·log t̂)`. S_tmin,
    S_tmax and t̂ are noise levels σ̃ = σ/α (σ for EDM). N steps cost 2N − 1
    evaluations (2N when the grid ends at σ > 0).

    Args:
        S_churn: overall amount of stochasticity, ≥ 0 (0 gives `EDMHeun`).
        S_tmin: lowest noise level σ̃ at which noise is added, ≥ 0.
        S_tmax: highest noise level σ̃ at which noise is added, ≥ S_tmin;
            None for no upper limit (the paper's S_tmax = ∞).
        S_noise: scale of the added noise, > 0; 1 is exact for an exact
            denoiser, the paper uses 1.003-1.007 to offset a network's excess
            denoising.

    Defaults are the paper's ImageNet-64 settings (Table 5) with S_noise = 1.

    Example:
    >>> sampler = EDMStochastic(S_churn=40, S_tmin=0.05, S_tmax=50, S_noise=1.003)
    >>> x = sampler.sample(denoise, x_T, schedule, steps=256, seed=0)

    Reference: Karras et al., "Elucidating the Design Space of Diffusion-Based
    Generative Models", NeurIPS 2022, Alg. 2 and Sec. 4.
    """

    name = "edm_stochastic"
    stochastic = True

    def __init__(self, S_churn=40.0, S_tmin=0.05, S_tmax=50.0, S_noise=1.0):
        self.S_churn = check_float(S_churn, "S_churn", minimum=0.0)
        self.S_tmin = check_float(S_tmin, "S_tmin", minimum=0.0)
        self.S_tmax = None if S_tmax is None else check_float(S_tmax, "S_tmax", minimum=self.S_tmin)
        self.S_noise = check_positive_float(S_noise, "S_noise")

    def initial_state(self, x, times):
        """γ = min(S_churn/N, √2 − 1), which depends on the number of steps N."""
        num_steps = times.shape[0] - 1
        return (ops.convert_to_tensor(min(self.S_churn / num_steps, math.sqrt(2.0) - 1.0), dtype=x.dtype),)

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        (gamma_max,) = state
        alpha_cur = schedule.alpha(t_cur)
        sigma_cur = schedule.sigma(t_cur) / alpha_cur
        churn = sigma_cur >= self.S_tmin
        if self.S_tmax is not None:
            churn = ops.logical_and(churn, sigma_cur <= self.S_tmax)
        gamma = ops.where(churn, gamma_max, 0.0)
        t_hat = (1.0 + gamma) * sigma_cur  # Alg. 2, line 5, as a noise level σ̃
        time_hat = ops.where(gamma > 0, schedule.t_from_log_snr(-2.0 * ops.log(t_hat)), t_cur)
        # sqrt(t̂² − σ̃²) = σ̃·sqrt(γ(2 + γ)), exactly 0 without churn (no rounding below 0).
        x_hat = x / alpha_cur + sigma_cur * ops.sqrt(gamma * (2.0 + gamma)) * self.S_noise * noise()
        return _heun_in_sigma(denoise, schedule, x_hat, time_hat, t_hat, t_next, final), state

    def get_config(self):
        return {"S_churn": self.S_churn, "S_tmin": self.S_tmin, "S_tmax": self.S_tmax, "S_noise": self.S_noise}
