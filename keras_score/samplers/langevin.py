"""Langevin dynamics: plain, annealed over noise levels (NCSN), and as a PC corrector.

One unadjusted Langevin step with step size ε targets p:

    x ← x + ε·∇log p(x) + sqrt(2ε)·z,   z ~ N(0, I).

Song & Ermon (2019) write the same step as x ← x + (α/2)·∇log p(x) + sqrt(α)·z
with α = 2ε. Each Langevin step draws one noise tensor, and a sampler step has
16 independent draws (`noise(0)` … `noise(15)`), so a sampler step runs at
most 16 Langevin steps.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_score.registry import Configurable
from keras_score.samplers.base import _NOISE_DRAWS_PER_STEP, Sampler, score_from_denoised
from keras_score.validation import check_bool, check_int, check_positive_float

# A corrector step leaves one of the step's noise draws to the predictor.
MAX_CORRECTOR_STEPS = _NOISE_DRAWS_PER_STEP - 1


def _mean_norm(v):
    """Euclidean norm of every example, averaged over the batch."""
    return ops.mean(ops.sqrt(ops.sum(v**2, axis=tuple(range(1, len(v.shape))))))


@keras.saving.register_keras_serializable(package="keras_score")
class Langevin(Sampler):
    """Plain (unadjusted) Langevin dynamics at the smallest noise level of the schedule.

    Every Langevin step is x ← x + ε·s(x, t_min) + sqrt(2ε)·z with the score
    s at the fixed time t_min of the schedule (σ(t_min) is the smallest noise
    level), so the chain targets p_{t_min} ≈ p_data. The time grid only sets
    the number of sampler steps: each runs `num_steps_per_level` Langevin
    steps, so `steps=N` runs N·`num_steps_per_level` of them, all at t_min.

    This is the sampler that Song & Ermon (2019, Sec. 3.2.2, Fig. 3) show to
    fail: from a broad initialisation it cannot move between separated modes
    in reasonable time, so it gets their relative weights wrong. Use
    `AnnealedLangevin` or any reverse-process sampler instead; `Langevin` is
    the baseline that shows why.

    Args:
        step_size: ε, in squared data units; it must be well below the
            smallest variance of p_{t_min} along any direction for the chain
            to be stable and accurate.
        num_steps_per_level: Langevin steps per sampler step, 1 to 16.

    Example:
    >>> x = Langevin(step_size=0.01).sample(denoise, x_init, schedule, steps=500)

    Reference: Song & Ermon, "Generative Modeling by Estimating Gradients of
    the Data Distribution", NeurIPS 2019, Sec. 2.2 (Langevin dynamics) and
    Sec. 3.2.2 (slow mixing); Welling & Teh, ICML 2011.
    """

    name = "langevin"
    stochastic = True

    def __init__(self, step_size=0.01, num_steps_per_level=1):
        self.step_size = check_positive_float(step_size, "step_size")
        self.num_steps_per_level = check_int(
            num_steps_per_level, "num_steps_per_level", minimum=1, maximum=_NOISE_DRAWS_PER_STEP
        )

    def num_function_evals(self, steps, ends_at_zero=True):
        return steps * self.num_steps_per_level

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        t = ops.convert_to_tensor(schedule.t_min, dtype=x.dtype)
        for j in range(self.num_steps_per_level):
            score = score_from_denoised(schedule, x, t, denoise(x, t))
            x = x + self.step_size * score + math.sqrt(2.0 * self.step_size) * noise(j)
        return x, state

    def get_config(self):
        return {"step_size": self.step_size, "num_steps_per_level": self.num_steps_per_level}


def _check_unit_alpha(schedule, sampler_name):
    times = np.linspace(schedule.t_min, schedule.t_max, 9).astype(keras.config.floatx())
    alpha = np.asarray(ops.convert_to_numpy(schedule.alpha(times)))
    if not np.allclose(alpha, 1.0, rtol=0.0, atol=1e-6):
        raise ValueError(
            f"{sampler_name} needs a schedule with α(t) = 1 (VE or EDM); received {schedule!r}. "
            "For other schedules use PredictorCorrector with the Langevin corrector."
        )


@keras.saving.register_keras_serializable(package="keras_score")
class AnnealedLangevin(Sampler):
    """Annealed Langevin dynamics over a decreasing ladder of noise levels (NCSN).

    Song & Ermon (2019), Algorithm 1: for every level σ_i, with
    α_i = ε·σ_i²/σ_L², run T Langevin steps

        x ← x + (α_i/2)·s(x, σ_i) + sqrt(α_i)·z,

    each level starting from the last state of the previous one. Here the
    levels are the noise levels of the time grid: sampler step i runs its T
    steps at t_{i+1}, so x_init (prior noise at t_0 = t_max) is annealed
    through σ(t_1) > … > σ(t_N); a "uniform" grid on `VESchedule` is NCSN's
    geometric ladder. σ_L = σ(t_min) is the schedule's smallest noise level,
    the last level of the built-in grids, so α_i/σ_i² = ε/σ_L² for all i
    (NCSN: ε = 2e-5, σ_L = 0.01, a ratio of 0.2). Each step then contracts
    p_{σ_i} ≈ N(μ, σ_i²) by 1 − ε/(2σ_L²): a ratio ε/σ_L² ≥ 4 diverges and
    raises a ValueError, and the chain is accurate for ratios ≲ 1.

    With `final_denoise`, the last state x at the last level t is replaced by
    the Tweedie denoiser D(x, t) = x + σ(t)²·s(x, t) (the denoising step of
    Jolicoeur-Martineau et al. 2021, used by NCSNv2). On a grid ending at
    σ = 0 (EDM), the last step runs no Langevin steps (there is no score at
    σ = 0): it is that denoising step from t_{N−1}, or the identity without
    `final_denoise`.

    The levels are σ_i = σ(t) for x_t = x₀ + σ_i·z, so the schedule must have
    α(t) = 1 (VE or EDM); a ValueError is raised otherwise.

    Args:
        epsilon: ε, the step size at the smallest level σ_L.
        num_steps_per_level: T, Langevin steps per noise level, 1 to 16.
        final_denoise: end with the denoising step.

    Example:
    >>> schedule = VESchedule(sigma_min=0.01, sigma_max=20.0)
    >>> sampler = AnnealedLangevin(epsilon=2e-5, num_steps_per_level=5)
    >>> x = sampler.sample(denoise, x_init, schedule, steps=100, time_grid="uniform")

    Reference: Song & Ermon, "Generative Modeling by Estimating Gradients of
    the Data Distribution", NeurIPS 2019, Algorithm 1; Jolicoeur-Martineau
    et al., "Adversarial Score Matching and Improved Sampling for Image
    Generation", ICLR 2021 (final denoising step).
    """

    name = "annealed_langevin"
    stochastic = True

    def __init__(self, epsilon=2e-5, num_steps_per_level=10, final_denoise=True):
        self.epsilon = check_positive_float(epsilon, "epsilon")
        self.num_steps_per_level = check_int(
            num_steps_per_level, "num_steps_per_level", minimum=1, maximum=_NOISE_DRAWS_PER_STEP
        )
        self.final_denoise = check_bool(final_denoise, "final_denoise")

    def num_function_evals(self, steps, ends_at_zero=True):
        levels = steps - int(ends_at_zero)
        return levels * self.num_steps_per_level + int(self.final_denoise)

    def compile(self, denoise, schedule, zero_end, return_trajectory=False, variables=(), guidance=None):
        _check_unit_alpha(schedule, self.name)
        sigma_last = float(ops.convert_to_numpy(schedule.sigma(schedule.t_min)))
        if self.epsilon >= 4.0 * sigma_last**2:
            raise ValueError(
                f"`epsilon`={self.epsilon} diverges for the smallest noise level σ_L = {sigma_last:.3g} "
                f"of {schedule!r}: it needs epsilon < 4·σ_L² = {4.0 * sigma_last**2:.3g}; "
                f"NCSN's choice is epsilon = 0.2·σ_L² = {0.2 * sigma_last**2:.3g}."
            )
        return super().compile(denoise, schedule, zero_end, return_trajectory, variables, guidance)

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        if final:  # σ(t_next) = 0: no Langevin steps, x is at level t_cur.
            return (denoise(x, t_cur) if self.final_denoise else x), state
        sigma_last = schedule.sigma(ops.convert_to_tensor(schedule.t_min, dtype=x.dtype))
        step_size = self.epsilon * (schedule.sigma(t_next) / sigma_last) ** 2
        for j in range(self.num_steps_per_level):
            score = score_from_denoised(schedule, x, t_next, denoise(x, t_next))
            x = x + 0.5 * step_size * score + ops.sqrt(step_size) * noise(j)
        if final is False and self.final_denoise:
            x = denoise(x, t_next)
        return x, state

    def get_config(self):
        return {
            "epsilon": self.epsilon,
            "num_steps_per_level": self.num_steps_per_level,
            "final_denoise": self.final_denoise,
        }


@keras.saving.register_keras_serializable(package="keras_score")
class Corrector(Configurable):
    """Base class of the correctors of `PredictorCorrector`.

    A corrector moves x towards p_t at a fixed time t with score-based MCMC.
    `correct(denoise, schedule, x, t, t_next, noise)` returns the corrected x;
    t_next is the time the predictor will step to, and `noise(j)` gives the
    j-th fresh standard normal draw shaped like x (0 ≤ j < 15).
    """

    name = None
    stochastic = False
    function_evals = 0

    def correct(self, denoise, schedule, x, t, t_next, noise):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_score")
class LangevinCorrector(Corrector):
    """Langevin corrector with the signal-to-noise step-size rule.

    Song et al. (2021), Algorithms 4 (VE) and 5 (VP): `num_steps` times,

        g = s(x, t),  z ~ N(0, I),  ε = 2·α_i·(r·‖z‖/‖g‖)²,
        x ← x + ε·g + sqrt(2ε)·z,

    with r = `snr`. α_i is the 1 − β_i of the grid step that follows,
    α_i = α(t)²/α(t_next)², which is 1 for VE (Algorithm 4) and DDPM's
    α_i = 1 − β_i on a DDPM grid (Algorithm 5). As in score_sde, ‖z‖ and ‖g‖
    are per-example norms averaged over the batch, so ε is one number per
    step and the samples of a batch depend on each other through it. A
    per-example ε would make the step size a function of x, which biases the
    chain: in low dimension, where ‖g‖ often nearly vanishes, it visibly
    flattens the weights of a mixture.

    Args:
        snr: r, the target ratio ‖ε·g‖/‖sqrt(2ε)·z‖ of signal to noise.
        num_steps: M, Langevin steps per call, 1 to 15 (a sampler step keeps
            one noise draw for the predictor).

    Example:
    >>> sampler = PredictorCorrector("reverse_diffusion", LangevinCorrector(snr=0.16, num_steps=1))

    Reference: Song et al., "Score-Based Generative Modeling through
    Stochastic Differential Equations", ICLR 2021, App. G, Algorithms 4-5.
    """

    name = "langevin"
    stochastic = True

    def __init__(self, snr=0.16, num_steps=1):
        self.snr = check_positive_float(snr, "snr")
        self.num_steps = check_int(num_steps, "num_steps", minimum=1, maximum=MAX_CORRECTOR_STEPS)

    @property
    def function_evals(self):
        return self.num_steps

    def correct(self, denoise, schedule, x, t, t_next, noise):
        alpha_step = (schedule.alpha(t) / schedule.alpha(t_next)) ** 2
        for j in range(self.num_steps):
            z = noise(j)
            score = score_from_denoised(schedule, x, t, denoise(x, t))
            step_size = 2.0 * alpha_step * (self.snr * _mean_norm(z) / _mean_norm(score)) ** 2
            x = x + step_size * score + ops.sqrt(2.0 * step_size) * z
        return x

    def get_config(self):
        return {"snr": self.snr, "num_steps": self.num_steps}
