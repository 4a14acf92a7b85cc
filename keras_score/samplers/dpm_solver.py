"""DPM-Solver++ multistep samplers (Lu et al. 2022b): exponential integrators in λ = log(α/σ).

The probability-flow ODE in data prediction D(x, t) ≈ E[x₀ | x_t = x] has the
exact solution (Lu et al. 2022b)

    x_t = (σ_t/σ_s)·x_s + σ_t·∫_{λ_s}^{λ_t} e^λ·D(x_λ, λ) dλ,

with λ = log(α/σ) half the log-SNR; the solvers integrate its linear part
exactly and a Taylor expansion of D in λ through the denoised values of the
previous steps, which they carry in the sampler's state, so each step costs
one evaluation. With h = λ_next − λ_cur, e^{−h} = σ̃_next/σ̃_cur (σ̃ = σ/α).
A last step that lands where σ = 0 (λ = ∞) is first order, x ← α·D, as in the
reference implementations.
"""

import keras
from keras import ops

from keras_score.samplers.base import Sampler
from keras_score.validation import check_float


def _log_snr_step(schedule, t_cur, t_next):
    """h = λ(t_next) − λ(t_cur) > 0 with λ = log(α/σ)."""
    return 0.5 * (schedule.log_snr(t_next) - schedule.log_snr(t_cur))


@keras.saving.register_keras_serializable(package="keras_score")
class DPMSolverPP2M(Sampler):
    """DPM-Solver++(2M): second-order multistep solver of the probability-flow ODE (Lu et al. 2022b, Alg. 2).

    With r = h_{i−1}/h_i and D_i = (1 + 1/(2r))·D(x_{i−1}) − 1/(2r)·D(x_{i−2}),
    x_i = (σ_i/σ_{i−1})·x_{i−1} − α_i·(e^{−h_i} − 1)·D_i. The first step is
    first order (D_i = D(x_{i−1})), and so is a last step to σ = 0, where it is
    x ← α·D. N steps cost N evaluations. Works for any schedule; best on the
    "log_snr" or "karras" grid.

    Example:
    >>> x = DPMSolverPP2M().sample(denoise, x_T, schedule, steps=10, time_grid="log_snr")

    Reference: Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of
    Diffusion Probabilistic Models", 2022, Alg. 2.
    """

    name = "dpmpp_2m"

    def initial_state(self, x, times):
        """(D of the previous step, its h, step counter); the h placeholder 1 is unused at step 0."""
        return (ops.zeros_like(x), ops.ones((), dtype=x.dtype), ops.zeros((), dtype="int32"))

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        denoised = denoise(x, t_cur)
        alpha_next = schedule.alpha(t_next)
        if final:
            return alpha_next * denoised, state
        old_denoised, h_last, i = state
        h = _log_snr_step(schedule, t_cur, t_next)
        half_inverse_r = ops.where(i > 0, h / (2.0 * h_last), 0.0)  # 1/(2r), 0 at the first step
        denoised_d = denoised + half_inverse_r * (denoised - old_denoised)
        x_next = self._update(schedule, x, t_cur, t_next, h, denoised_d, noise)
        return x_next, (denoised, h, i + 1)

    def _update(self, schedule, x, t_cur, t_next, h, denoised_d, noise):
        """x_next = (σ_next/σ_cur)·x − α_next·(e^{−h} − 1)·D_d."""
        ratio = schedule.sigma(t_next) / schedule.sigma(t_cur)
        return ratio * x - schedule.alpha(t_next) * ops.expm1(-h) * denoised_d


@keras.saving.register_keras_serializable(package="keras_score")
class DPMSolverPP2MSDE(DPMSolverPP2M):
    """SDE-DPM-Solver++(2M): the 2M multistep step on the reverse SDE, with fresh noise each step.

    Integrating the linear part of the reverse SDE in data prediction exactly
    (its noise included) gives x_t = (σ_t/σ_s)·e^{−h}·x_s
    + 2α_t·∫ e^{−2(λ_t−λ)}·D dλ + σ_t·sqrt(1 − e^{−2h})·ε, the SDE counterpart
    of the ODE solution above. Generalised with η ≥ 0 as in k-diffusion's
    `sample_dpmpp_2m_sde`, the step is

        x_next = (σ_next/σ_cur)·e^{−ηh}·x − α_next·(e^{−(1+η)h} − 1)·D_d
                 + σ_next·sqrt(1 − e^{−2ηh})·ε,

    with D_d = D + 1/(2r)·(D − D_prev) the 2M extrapolation (first order at
    the first step and on a last step to σ = 0, which adds no noise). For any
    η and an exact denoiser each step keeps the marginal of x_t exactly (one
    data point: mean α·x₀, variance σ²); η = 1 is the reverse SDE, η = 0 is
    `DPMSolverPP2M`. N steps cost N evaluations.

    Args:
        eta: η ≥ 0, the amount of noise: 0 is the ODE, 1 the reverse SDE.

    Example:
    >>> x = DPMSolverPP2MSDE().sample(denoise, x_T, schedule, steps=50, seed=0)

    Reference: Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of
    Diffusion Probabilistic Models", 2022 (the 2M multistep in data
    prediction); Crowson, k-diffusion, `sample_dpmpp_2m_sde` (its SDE form,
    "midpoint" variant).
    """

    name = "dpmpp_2m_sde"
    stochastic = True

    def __init__(self, eta=1.0):
        self.eta = check_float(eta, "eta", minimum=0.0)

    def _update(self, schedule, x, t_cur, t_next, h, denoised_d, noise):
        sigma_next = schedule.sigma(t_next)
        eta_h = self.eta * h
        ratio = sigma_next / schedule.sigma(t_cur) * ops.exp(-eta_h)
        x_next = ratio * x - schedule.alpha(t_next) * ops.expm1(-h - eta_h) * denoised_d
        return x_next + sigma_next * ops.sqrt(-ops.expm1(-2.0 * eta_h)) * noise()

    def get_config(self):
        return {"eta": self.eta}


@keras.saving.register_keras_serializable(package="keras_score")
class DPMSolverPP3M(Sampler):
    """DPM-Solver++(3M): third-order multistep solver of the probability-flow ODE (Lu et al. 2022b).

    D is expanded to second order in λ around the current step from the last
    three denoised values m₀, m₁, m₂ (steps h₀, h₁ before h; r_k = h_k/h):
    D1_0 = (m₀ − m₁)/r₀, D1_1 = (m₁ − m₂)/r₁, D1 = D1_0 + r₀/(r₀ + r₁)·(D1_0 − D1_1)
    ≈ h·D′ and D2 = (D1_0 − D1_1)/(r₀ + r₁) ≈ h²·D″/2. The exact integrals of
    e^λ·(λ − λ_cur)^k/k! give

        x_next = (σ_next/σ_cur)·x − α·φ₁·m₀ + α·φ₂·D1 − 2·α·φ₃·D2,

    φ₁ = e^{−h} − 1, φ₂ = φ₁/h + 1, φ₃ = φ₂/h − ½ (φ₃·h² = −∫₀ʰ e^{u−h}u²/2 du;
    the factor 2 makes the step exact when D is quadratic in λ; the DPM-Solver
    code's `multistep_dpm_solver_third_update` weighs D2 by φ₃ alone, half of
    that). The first step is first order, the second second order (m₂ absent),
    and a last step to σ = 0 is x ← α·D. N steps cost N evaluations.

    Example:
    >>> x = DPMSolverPP3M().sample(denoise, x_T, schedule, steps=10, time_grid="log_snr")

    Reference: Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of
    Diffusion Probabilistic Models", 2022 (multistep DPM-Solver++); Lu et al.,
    "DPM-Solver", NeurIPS 2022 (Taylor expansion in λ and its φ integrals).
    """

    name = "dpmpp_3m"

    def initial_state(self, x, times):
        """(m₁, m₂, h₀, h₁, step counter); the h placeholders 1 are unused until set."""
        one = ops.ones((), dtype=x.dtype)
        return (ops.zeros_like(x), ops.zeros_like(x), one, one, ops.zeros((), dtype="int32"))

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        m0 = denoise(x, t_cur)
        alpha_next = schedule.alpha(t_next)
        if final:
            return alpha_next * m0, state
        m1, m2, h0, h1, i = state
        h = _log_snr_step(schedule, t_cur, t_next)
        r0, r1 = h0 / h, h1 / h
        d1_0 = (m0 - m1) / r0
        d1_1 = (m1 - m2) / r1
        d1 = ops.where(i >= 2, d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1), d1_0)
        d2 = (d1_0 - d1_1) / (r0 + r1)
        phi_1 = ops.expm1(-h)
        phi_2 = phi_1 / h + 1.0
        phi_3 = phi_2 / h - 0.5
        x_next = schedule.sigma(t_next) / schedule.sigma(t_cur) * x - alpha_next * phi_1 * m0
        x_next = x_next + ops.where(i >= 1, alpha_next * phi_2 * d1, 0.0)
        x_next = x_next - ops.where(i >= 2, 2.0 * alpha_next * phi_3 * d2, 0.0)
        return x_next, (m0, m1, h, h0, i + 1)
