"""Exponential moving averages of a denoiser's weights: EDM's half-life with ramp-up, EDM2's power function.

After optimiser step k (k = 1, 2, ...), the average θ̄ moves toward the
new weights θ_k:

    θ̄_k = β_k·θ̄_{k−1} + (1 − β_k)·θ_k,

with β_1 = 0 in both schedules, so the average starts at the first
stepped weights. `ScoreModel(ema=...)` keeps θ̄ in its own variables, updates
them inside the compiled training step (after the optimiser's update, on
every backend), saves them in the `.keras` file beside the raw weights, and
samples, evaluates and computes likelihoods with them; the raw weights are
the ones that keep training. Keras' optimizer EMA (`use_ema=True`) is not
used: it overwrites the raw weights with the average at the end of every
`fit`, so that a second `fit` would continue from the average.

Reference: Karras et al., "Elucidating the Design Space of Diffusion-Based
Generative Models", NeurIPS 2022 (training loop: `ema_halflife_kimg`,
`ema_rampup_ratio`); Karras et al., "Analyzing and Improving the Training
Dynamics of Diffusion Models", CVPR 2024 (EDM2), Sec. 3.1 and App. C.
"""

import keras
import numpy as np
from keras import ops

from keras_score import registry, validation


class MovingAverage(registry.Configurable):
    """Base class: a schedule of decays β_k for the average of the weights after step k.

    Subclasses implement `decay(step)`; `update` applies the average to a
    list of variables.
    """

    def decay(self, step):
        """β_k for the update after optimiser step `step` (a float32 tensor, step ≥ 1)."""
        raise NotImplementedError

    def update(self, averages, variables, step):
        """θ̄ ← β·θ̄ + (1 − β)·θ for each pair, with β = `decay(step)`.

        Args:
            averages: the average's variables.
            variables: the weights they average, in the same order.
            step: the number of optimiser steps taken, including this one.
        """
        beta = self.decay(ops.cast(step, "float32"))
        for average, variable in zip(averages, variables):
            value = ops.cast(ops.stop_gradient(variable), "float32")
            average.assign(ops.cast(value + beta * (ops.cast(average, "float32") - value), average.dtype))


@keras.saving.register_keras_serializable(package="keras_score")
class HalfLifeEMA(MovingAverage):
    """EDM's average: a fixed half-life in optimiser steps, ramped up early in training.

    β_k = 0.5^(1 / max(min(halflife, (k − 1)·rampup_ratio), 1e-8)): the
    weights of step k count half as much after `halflife` more steps, and
    while training is young the half-life is `rampup_ratio` of the steps
    taken so far, so the start of training is forgotten. EDM counts in
    images (`ema_halflife_kimg` = 500 with batch 512 at CIFAR-10: about 977
    steps); here the unit is the optimiser step, so the same half-life at
    batch B is 500 000 / B steps.

    Args:
        halflife: half-life in optimiser steps, > 0.
        rampup_ratio: the ramp-up's fraction of the steps taken, or None for
            a constant β = 0.5^(1/halflife) from the second step on.

    Example:
    >>> model = ScoreModel(MLP(), ema=HalfLifeEMA(halflife=500))

    Reference: Karras et al. 2022, NVlabs/edm `training_loop.py` (ramp-up ratio 0.05).
    """

    def __init__(self, halflife=500.0, rampup_ratio=0.05):
        self.halflife = validation.check_float(halflife, "halflife", 0.0, exclusive_minimum=True)
        self.rampup_ratio = None if rampup_ratio is None else validation.check_float(
            rampup_ratio, "rampup_ratio", 0.0, exclusive_minimum=True
        )

    def decay(self, step):
        halflife = ops.convert_to_tensor(self.halflife, "float32")
        if self.rampup_ratio is not None:
            halflife = ops.minimum(halflife, (step - 1.0) * self.rampup_ratio)
        beta = ops.power(0.5, 1.0 / ops.maximum(halflife, 1e-8))
        return ops.where(step > 1.0, beta, 0.0)

    def get_config(self):
        return {"halflife": self.halflife, "rampup_ratio": self.rampup_ratio}


def std_to_exponent(std):
    """EDM2's exponent γ of the power-function average with relative standard deviation `std`.

    σ_rel² = (γ + 1) / ((γ + 2)²·(γ + 3)) (EDM2, Eq. 3), solved as the largest
    real root of γ³ + 7γ² + (16 − σ_rel⁻²)·γ + 12 − σ_rel⁻² = 0.

    Args:
        std: σ_rel in (0, 12^(-1/2)) (γ > 0 needs σ_rel < 12^(-1/2) ≈ 0.289).

    Returns:
        γ, a float.

    Example:
    >>> round(std_to_exponent(0.10), 3)
    6.94
    """
    inverse = float(std) ** -2
    return float(np.roots([1.0, 7.0, 16.0 - inverse, 12.0 - inverse]).real.max())


@keras.saving.register_keras_serializable(package="keras_score")
class PowerFunctionEMA(MovingAverage):
    """EDM2's power-function average: β_k = (1 − 1/k)^(γ+1).

    The average after step t weighs the weights of step k by k^(γ+1) −
    (k − 1)^(γ+1), all of training with a power-law profile, rather than a
    fixed window; its width is set by the relative standard deviation σ_rel
    (EDM2 uses 0.05 and 0.10), or by γ directly (γ = 0 is the plain running
    mean of all the steps' weights). The closed form after t steps is
    θ̄_t = t^−(γ+1)·Σ_k (k^(γ+1) − (k − 1)^(γ+1))·θ_k.

    Args:
        std: σ_rel in (0, 0.289); ignored when `exponent` is given.
        exponent: γ ≥ 0, instead of `std`.

    Example:
    >>> model = ScoreModel(MLP(), ema=PowerFunctionEMA(std=0.10))

    Reference: Karras et al. 2024 (EDM2), Sec. 3.1, Eq. 2–3; NVlabs/edm2 `training/phema.py`.
    """

    def __init__(self, std=0.10, exponent=None):
        if exponent is None:
            self.std = validation.check_float(std, "std", 0.0, 12.0**-0.5, exclusive_minimum=True, exclusive_maximum=True)
            self.exponent = std_to_exponent(self.std)
        else:
            self.std = None
            self.exponent = validation.check_float(exponent, "exponent", 0.0)

    def decay(self, step):
        return ops.power(1.0 - 1.0 / step, self.exponent + 1.0)

    def get_config(self):
        return {"std": self.std, "exponent": None if self.std is not None else self.exponent}


MOVING_AVERAGES = {"edm": HalfLifeEMA, "halflife": HalfLifeEMA, "power": PowerFunctionEMA, "edm2": PowerFunctionEMA}


def get(identifier):
    """A `MovingAverage` from an instance, a name in `MOVING_AVERAGES` (default settings), a config dict, or None."""
    return None if identifier is None else registry.resolve(identifier, MOVING_AVERAGES, MovingAverage, "ema")
