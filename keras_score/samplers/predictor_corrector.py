"""Predictor-corrector samplers (Song et al. 2021, Sec. 4.2) and DDPM ancestral sampling.

A predictor moves x from the noise level of t_cur to that of t_next; a
corrector runs score-based MCMC at a fixed time. For a grid step t → s < t
the forward process has the exact Gaussian transition

    x_t = a·x_s + sqrt(b)·z,   a = α_t/α_s,   b = σ_t² − a²·σ_s²,

and, given x₀, the posterior q(x_s | x_t, x₀) is Gaussian with

    mean = a·σ_s²/σ_t²·x_t + α_s·b/σ_t²·x₀,   variance = b·σ_s²/σ_t².

The predictors below are built from these, so they work for every schedule.
"""

import keras
from keras import ops

from keras_score.registry import Configurable, resolve
from keras_score.samplers.base import Sampler, score_from_denoised
from keras_score.samplers.ddim import snr_ratio_complement
from keras_score.samplers.langevin import MAX_CORRECTOR_STEPS, Corrector, LangevinCorrector
from keras_score.sde import expand_to
from keras_score.validation import check_bool, check_int, check_positive_float


@keras.saving.register_keras_serializable(package="keras_score")
class Predictor(Configurable):
    """Base class of the predictors of `PredictorCorrector`.

    `predict(denoise, schedule, x, t_cur, t_next, noise, final)` returns x at
    t_next; `noise()` is one fresh standard normal draw and `final` is the
    sampler's flag (True when t_next has σ = 0, where no noise is added).
    """

    name = None
    stochastic = False
    function_evals = 1
    # Whether `predict` moves x to the noise level of t_next.
    advances = True

    def predict(self, denoise, schedule, x, t_cur, t_next, noise, final):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_score")
class ReverseDiffusionPredictor(Predictor):
    """Reverse diffusion: the forward step's discretization, run backwards.

    Song et al. (2021), App. E, Eq. 46: with the forward discretization
    x_t = x_s + f(x_s) + G·z (Eq. 45), reverse diffusion is

        x_s = x_t − f(x_t) + G²·s(x_t, t) + G·z.

    For a grid step t → s the exact forward transition gives f(x) = (a − 1)·x
    and G² = b, so x_s = (2 − a)·x_t + b·s(x_t, t) + sqrt(b)·z. This is
    score_sde's predictor for VE (a = 1, b = σ_t² − σ_s²) and for VP
    (a = sqrt(1 − β), b = β). The step landing at σ = 0 adds no noise.

    Reference: Song et al., "Score-Based Generative Modeling through
    Stochastic Differential Equations", ICLR 2021, App. E, Eqs. 45-46.
    """

    name = "reverse_diffusion"
    stochastic = True

    def predict(self, denoise, schedule, x, t_cur, t_next, noise, final):
        a = expand_to(schedule.alpha(t_cur) / schedule.alpha(t_next), x)
        b = expand_to(schedule.sigma(t_cur) ** 2 * snr_ratio_complement(schedule, t_cur, t_next), x)
        score = score_from_denoised(schedule, x, t_cur, denoise(x, t_cur))
        x_mean = (2.0 - a) * x + b * score
        if final:
            return x_mean
        return x_mean + ops.sqrt(b) * noise()


@keras.saving.register_keras_serializable(package="keras_score")
class AncestralSamplingPredictor(Predictor):
    """Ancestral sampling: x_s ~ q(x_s | x_t, x₀ = D(x_t, t)), the exact Gaussian posterior.

    Ho et al. (2020), Algorithm 2 with σ_t² = β̃_t, i.e. the posterior of
    Eqs. 6-7, written for any schedule (module docstring):

        x_s = a·σ_s²/σ_t²·x_t + α_s·b/σ_t²·D + sqrt(b·σ_s²/σ_t²)·z.

    For VP this is DDPM's ancestral step; for VE (a = 1) it is score_sde's VE
    ancestral step. score_sde's VP version uses Ho's other variance,
    σ_t² = β_t. The step landing at σ = 0 returns D.

    Reference: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models",
    NeurIPS 2020, Eqs. 6-7 and Algorithm 2; Song et al. 2021, App. F.
    """

    name = "ancestral_sampling"
    stochastic = True

    def predict(self, denoise, schedule, x, t_cur, t_next, noise, final):
        denoised = denoise(x, t_cur)
        alpha_cur = expand_to(schedule.alpha(t_cur), x)
        alpha_next = expand_to(schedule.alpha(t_next), x)
        variance_ratio = expand_to((schedule.sigma(t_next) / schedule.sigma(t_cur)) ** 2, x)  # σ_s²/σ_t²
        fraction = expand_to(snr_ratio_complement(schedule, t_cur, t_next), x)  # b/σ_t²
        x_mean = alpha_cur / alpha_next * variance_ratio * x + alpha_next * fraction * denoised
        if final:
            return x_mean
        sigma_next = expand_to(schedule.sigma(t_next), x)
        return x_mean + sigma_next * ops.sqrt(fraction) * noise()


@keras.saving.register_keras_serializable(package="keras_score")
class NullPredictor(Predictor):
    """Leaves x unchanged: `PredictorCorrector` then runs its corrector alone.

    With it the corrector visits t_0, …, t_{N−1} and the state stays at the
    noise level of the last one, where the final denoising step is applied
    (score_sde's corrector-only sampling, Song et al. 2021, Table 1).
    """

    name = "none"
    function_evals = 0
    advances = False

    def predict(self, denoise, schedule, x, t_cur, t_next, noise, final):
        return x


@keras.saving.register_keras_serializable(package="keras_score")
class NullCorrector(Corrector):
    """Leaves x unchanged: `PredictorCorrector` then runs its predictor alone."""

    name = "none"

    def correct(self, denoise, schedule, x, t, t_next, noise):
        return x


PREDICTORS = {
    cls.name: cls for cls in (ReverseDiffusionPredictor, AncestralSamplingPredictor, NullPredictor)
}
CORRECTORS = {cls.name: cls for cls in (LangevinCorrector, NullCorrector)}


@keras.saving.register_keras_serializable(package="keras_score")
class PredictorCorrector(Sampler):
    """Predictor-corrector sampling (Song et al. 2021, Sec. 4.2, Algorithm 1; App. G).

    Every grid step t_cur → t_next first runs the corrector at t_cur, then the
    predictor from t_cur to t_next: the order of score_sde's `pc_sampler`,
    equivalent to the paper's Algorithm 1 (predictor, then corrector at the
    new time) except that the corrector also runs at t_max and never at the
    last time t_N, which may have σ = 0 where no score exists. Predictors
    add no noise on a step landing at σ = 0.

    With `final_denoise`, a last state x still noisy at time t (t_N with
    σ(t_N) > 0, as on VE grids; t_{N−1} with the null predictor) is replaced
    by the Tweedie denoiser D(x, t) = E[x₀ | x_t = x], one more evaluation;
    a predictor landing at σ = 0 has already removed all noise, and there
    the flag changes nothing. score_sde instead returns the last predictor
    mean (its `denoise=True`).

    Args:
        predictor: "reverse_diffusion", "ancestral_sampling", "none", a
            config dict, or a `Predictor`.
        corrector: "langevin", "none", a config dict, or a `Corrector`.
        corrector_steps: M, the Langevin corrector's `num_steps`, when
            `corrector` is given by name (default 1).
        snr: r, the Langevin corrector's signal-to-noise ratio, when
            `corrector` is given by name (default 0.16).
        final_denoise: end with the denoising step.

    Example:
    >>> sampler = PredictorCorrector("reverse_diffusion", "langevin", snr=0.16)
    >>> x = sampler.sample(denoise, x_T, VESchedule(), steps=1000, time_grid="uniform")

    Reference: Song et al., "Score-Based Generative Modeling through
    Stochastic Differential Equations", ICLR 2021, Sec. 4.2 and App. G.
    """

    name = "predictor_corrector"

    def __init__(self, predictor="reverse_diffusion", corrector="langevin", corrector_steps=None, snr=None, final_denoise=True):
        overrides = {}
        if corrector_steps is not None:
            overrides["num_steps"] = check_int(corrector_steps, "corrector_steps", minimum=1, maximum=MAX_CORRECTOR_STEPS)
        if snr is not None:
            overrides["snr"] = check_positive_float(snr, "snr")
        if overrides and corrector != LangevinCorrector.name:
            raise ValueError(
                "`corrector_steps` and `snr` configure corrector='langevin' given by name; "
                f"received corrector={corrector!r} with corrector_steps={corrector_steps!r}, snr={snr!r}."
            )
        self.predictor = resolve(predictor, PREDICTORS, Predictor, "predictor")
        self.corrector = resolve(corrector, CORRECTORS, Corrector, "corrector", **overrides)
        self.final_denoise = check_bool(final_denoise, "final_denoise")

    @property
    def stochastic(self):
        return self.predictor.stochastic or self.corrector.stochastic

    def num_function_evals(self, steps, ends_at_zero=True):
        per_step = self.predictor.function_evals + self.corrector.function_evals
        last_is_noisy = not (self.predictor.advances and ends_at_zero)
        return steps * per_step + int(self.final_denoise and last_is_noisy)

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        return self.guided_step(denoise, schedule, x, t_cur, t_next, state, noise, final, lambda x, t, j: x)

    def guided_step(self, denoise, schedule, x, t_cur, t_next, state, noise, final, project):
        """Corrector, projection at t_cur, predictor, projection at t_next (Song et al. 2021, App. I.2)."""
        x = self.corrector.correct(denoise, schedule, x, t_cur, t_next, lambda j: noise(1 + j))
        x = project(x, t_cur, 0)
        x = self.predictor.predict(denoise, schedule, x, t_cur, t_next, noise, final)
        if self.final_denoise and final is not None:
            if not self.predictor.advances:
                x = denoise(x, t_cur)
            elif not final:
                x = denoise(x, t_next)
        return project(x, None if final is not None else t_next, 1), state

    def get_config(self):
        return {
            "predictor": keras.saving.serialize_keras_object(self.predictor),
            "corrector": keras.saving.serialize_keras_object(self.corrector),
            "final_denoise": self.final_denoise,
        }


@keras.saving.register_keras_serializable(package="keras_score")
class DDPMAncestral(PredictorCorrector):
    """DDPM ancestral sampling for any schedule: the ancestral predictor, no corrector.

    Ho et al. (2020), Algorithm 2 with the posterior variance β̃_t; see
    `AncestralSamplingPredictor`. It takes the same steps as `DDIM(eta=1.0)`
    on the same noise draws, and adds the final denoising step.

    Args:
        final_denoise: on grids ending at σ > 0 (VE), return D(x_N, t_N).

    Example:
    >>> x = DDPMAncestral().sample(denoise, x_T, VPSchedule(), steps=100, time_grid="uniform")

    Reference: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models",
    NeurIPS 2020, Algorithm 2.
    """

    name = "ddpm"

    def __init__(self, final_denoise=True):
        super().__init__(AncestralSamplingPredictor.name, NullCorrector.name, final_denoise=final_denoise)

    def get_config(self):
        return {"final_denoise": self.final_denoise}
