"""A noise schedule learned with the denoiser: γ(t) = −log-SNR(t) as a monotone Keras layer.

Variational diffusion models (VDM) make the schedule a network trained on
the same loss as the denoiser. `LearnedSchedule` is a variance-preserving
`NoiseSchedule` whose γ(t) comes from a Keras layer:

- `LinearGamma`: γ(t) = b + |w|·t, initialised to the line from γ_min to
  γ_max (VDM's "learnable_scalar"; `trainable=False` gives its "fixed"
  linear schedule);
- `MonotoneGamma`: that line plus a monotone MLP correction with positive
  weights, γ(t) = l₁(t) + l₃(φ(l₂(2t − 1)))/n with φ = 2·(sigmoid − ½),
  n = 1024 hidden units and every kernel taken through |·| (VDM's
  "learnable_nnet").

Each layer returns γ(t) and, by forward-mode differentiation (the tangent
ṫ = 1 carried through each layer beside its value, exact and
differentiable with respect to the weights on every backend), γ'(t), which
the drift, the diffusion coefficient and the VDM loss ½·γ'(t)·‖ε − ε̂‖² use.
α² = sigmoid(−γ) and σ² = sigmoid(γ); the inverse t(λ) that samplers and
log-normal noise levels need is found inside the graph by bisection.

A `Denoiser` tracks the schedule's layer (`NoiseSchedule.weight_layers`),
so its weights train with the model, enter its EMA and are saved in the
`.keras` file.

Reference: Kingma, Salimans, Poole & Ho, "Variational Diffusion Models",
NeurIPS 2021, Sec. 3.4 and App. H (reference code google-research/vdm,
`model_vdm.py`: `NoiseSchedule_Scalar`, `NoiseSchedule_NNet`, `DenseMonotone`).
"""

import keras
from keras import ops

from keras_score import precision
from keras_score.schedules import NoiseSchedule, _as_tensor
from keras_score.validation import check_float, check_int

_PACKAGE = "keras_score"


def _flat(t):
    """t (scalar or any shape) as a column (n, 1), and a function restoring t's shape."""
    t = _as_tensor(t)
    shape = ops.shape(t)
    return ops.reshape(t, (-1, 1)), lambda value: ops.reshape(value, shape)


class GammaLayer(keras.layers.Layer):
    """Base class: a monotone γ(t) on [0, 1] with `value_and_derivative`.

    Subclasses implement `value_and_derivative(t)` for t of shape (n, 1),
    returning γ and γ' of that shape; `call`, `derivative` and
    `value_and_derivative_at` take t of any shape. Computes in full
    precision under a mixed policy.

    Args:
        gamma_min: γ(0) at initialisation (VDM: −13.3).
        gamma_max: γ(1) at initialisation (VDM: 5.0).
    """

    def __init__(self, gamma_min=-13.3, gamma_max=5.0, **kwargs):
        super().__init__(**{**kwargs, "dtype": precision.full_precision_policy(kwargs.get("dtype"))})
        self.gamma_min = check_float(gamma_min, "gamma_min")
        self.gamma_max = check_float(gamma_max, "gamma_max", minimum=self.gamma_min, exclusive_minimum=True)

    def build(self, input_shape=None):
        self.built = True

    def __call__(self, t, **kwargs):
        return super().__call__(_as_tensor(t), **kwargs)

    def call(self, t):
        return self.value_and_derivative_at(t)[0]

    def derivative(self, t):
        """γ'(t), shaped like t."""
        return self.value_and_derivative_at(t)[1]

    def value_and_derivative_at(self, t):
        """(γ(t), γ'(t)) for t of any shape, both shaped like t."""
        if not self.built:
            self.build()
        column, restore = _flat(t)
        value, derivative = self.value_and_derivative(column)
        return restore(value), restore(derivative)

    def value_and_derivative(self, t):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "gamma_min": self.gamma_min, "gamma_max": self.gamma_max}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LinearGamma(GammaLayer):
    """γ(t) = b + |w|·t, initialised to γ_min + (γ_max − γ_min)·t (VDM's learnable linear schedule).

    With `trainable=False` it is VDM's fixed linear schedule.

    Args:
        gamma_min: γ(0) at initialisation.
        gamma_max: γ(1) at initialisation.

    Example:
    >>> gamma = LinearGamma(-13.3, 5.0)
    >>> [round(float(v), 2) for v in gamma(ops.convert_to_tensor([0.0, 1.0]))]
    [-13.3, 5.0]

    Reference: Kingma et al., "Variational Diffusion Models", NeurIPS 2021, Sec. 3.4.
    """

    def build(self, input_shape=None):
        self.w = self.add_weight(
            name="w", shape=(), initializer=keras.initializers.Constant(self.gamma_max - self.gamma_min)
        )
        self.b = self.add_weight(name="b", shape=(), initializer=keras.initializers.Constant(self.gamma_min))
        self.built = True

    def value_and_derivative(self, t):
        slope = ops.abs(self.w)
        return self.b + slope * t, ops.broadcast_to(slope, ops.shape(t))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MonotoneGamma(GammaLayer):
    """γ(t) = l₁(t) + l₃(φ(l₂(2t − 1)))/n: a line plus a monotone MLP correction (VDM's learned schedule).

    l₁ is a positive-slope line initialised from γ_min to γ_max, l₂ a dense
    layer of n units, φ(u) = 2·(sigmoid(u) − ½), l₃ a dense layer to one
    output without bias; every kernel enters through its absolute value, so
    γ is increasing in t for any weights. l₂'s and l₃'s kernels start from
    N(0, 1), l₂'s bias from 0, as in VDM.

    Args:
        gamma_min: γ(0) of the line at initialisation.
        gamma_max: γ(1) of the line at initialisation.
        hidden_units: n (VDM: 1024).

    Example:
    >>> gamma = MonotoneGamma(hidden_units=1024)
    >>> values = gamma(ops.linspace(0.0, 1.0, 5))
    >>> bool(ops.all(values[1:] > values[:-1]))
    True

    Reference: Kingma et al., "Variational Diffusion Models", NeurIPS 2021,
    App. H (google-research/vdm `NoiseSchedule_NNet`).
    """

    def __init__(self, gamma_min=-13.3, gamma_max=5.0, hidden_units=1024, **kwargs):
        super().__init__(gamma_min, gamma_max, **kwargs)
        self.hidden_units = check_int(hidden_units, "hidden_units", minimum=1)

    def build(self, input_shape=None):
        constant = keras.initializers.Constant
        self.w1 = self.add_weight(name="w1", shape=(), initializer=constant(self.gamma_max - self.gamma_min))
        self.b1 = self.add_weight(name="b1", shape=(), initializer=constant(self.gamma_min))
        normal = keras.initializers.RandomNormal(stddev=1.0)
        self.w2 = self.add_weight(name="w2", shape=(1, self.hidden_units), initializer=normal)
        self.b2 = self.add_weight(name="b2", shape=(self.hidden_units,), initializer="zeros")
        self.w3 = self.add_weight(name="w3", shape=(self.hidden_units, 1), initializer=normal)
        self.built = True

    def value_and_derivative(self, t):
        # Forward mode: each line maps (value, tangent) with the tangent of t equal to 1.
        w2, w3 = ops.abs(self.w2), ops.abs(self.w3) / self.hidden_units
        u = ops.matmul(2.0 * t - 1.0, w2) + self.b2
        du = 2.0 * w2
        s = ops.sigmoid(u)
        phi, dphi = 2.0 * (s - 0.5), 2.0 * s * (1.0 - s) * du
        slope = ops.abs(self.w1)
        return self.b1 + slope * t + ops.matmul(phi, w3), slope + ops.matmul(dphi, w3)

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LearnedSchedule(NoiseSchedule):
    """Variance preserving with a learned γ(t) = −log-SNR(t): α² = sigmoid(−γ), σ² = sigmoid(γ), t ∈ [0, 1].

    The drift is f = d log α/dt = −½·σ²·γ', the diffusion g² = σ²·γ', and
    the inverse t(λ) is the root of γ(t) = −λ by bisection on [0, 1]
    (`bisection_steps` halvings inside the graph; λ outside γ's range maps
    to 0 or 1). Every sampler, guidance and the likelihood work with it; its
    layer's weights train with the model (`Denoiser` tracks
    `weight_layers`) and are saved in the `.keras` file.

    Args:
        gamma: a `GammaLayer` (`MonotoneGamma()` by default), or "linear"
            for `LinearGamma()`, "monotone" for `MonotoneGamma()`.
        bisection_steps: halvings of [0, 1] in `t_from_log_snr` (32 leave
            an interval of 2⁻³² ≈ 2e-10).

    Example:
    ```python
    model = ScoreModel(MLP(), schedule=LearnedSchedule(), parameterization="epsilon",
                       objective=VariationalBound())
    ```

    Reference: Kingma, Salimans, Poole & Ho, "Variational Diffusion Models", NeurIPS 2021, Eqs. 2-3 and 13.
    """

    def __init__(self, gamma=None, bisection_steps=32):
        super().__init__(0.0, 1.0)
        if gamma is None or gamma == "monotone":
            gamma = MonotoneGamma()
        elif gamma == "linear":
            gamma = LinearGamma()
        if not isinstance(gamma, GammaLayer):
            raise ValueError(
                "`gamma` must be a GammaLayer (LinearGamma, MonotoneGamma), 'linear' or 'monotone'; "
                f"received gamma={gamma!r}."
            )
        self.gamma = gamma
        self.bisection_steps = check_int(bisection_steps, "bisection_steps", minimum=1)

    @property
    def weight_layers(self):
        return (self.gamma,)

    def frozen_copy(self):
        """A `LearnedSchedule` with a copy of γ's current weights that does not train (saved with its holder)."""
        config = {k: v for k, v in self.gamma.get_config().items() if k != "name"}
        gamma = type(self.gamma).from_config({**config, "trainable": False})
        gamma.build()
        if not self.gamma.built:
            self.gamma.build()
        gamma.set_weights(self.gamma.get_weights())
        return LearnedSchedule(gamma, self.bisection_steps)

    def signature(self):
        gamma = {k: v for k, v in self.gamma.get_config().items() if k not in ("name", "trainable", "dtype")}
        return {
            "class": "LearnedSchedule",
            "gamma": [type(self.gamma).__name__, gamma],
            "bisection": self.bisection_steps,
        }

    def log_alpha(self, t):
        return -0.5 * ops.softplus(self.gamma(t))

    def sigma(self, t):
        return ops.sqrt(ops.sigmoid(self.gamma(t)))

    def log_snr(self, t):
        return -self.gamma(t)

    def dlog_snr_dt(self, t):
        return -self.gamma.derivative(t)

    def dlog_alpha_dt(self, t):
        gamma, derivative = self.gamma.value_and_derivative_at(t)
        return -0.5 * ops.sigmoid(gamma) * derivative

    def dsigma_dt(self, t):
        gamma, derivative = self.gamma.value_and_derivative_at(t)
        variance = ops.sigmoid(gamma)
        return 0.5 * ops.sqrt(variance) * (1.0 - variance) * derivative

    def diffusion_squared(self, t):
        gamma, derivative = self.gamma.value_and_derivative_at(t)
        return ops.sigmoid(gamma) * derivative

    def t_from_log_snr(self, log_snr):
        target = -_as_tensor(log_snr)

        def halve(_, bounds):
            low, high = bounds
            middle = 0.5 * (low + high)
            above = self.gamma(middle) > target
            return ops.where(above, low, middle), ops.where(above, middle, high)

        low, high = ops.fori_loop(0, self.bisection_steps, halve, (ops.zeros_like(target), ops.ones_like(target)))
        return 0.5 * (low + high)

    def get_config(self):
        return {"gamma": keras.saving.serialize_keras_object(self.gamma), "bisection_steps": self.bisection_steps}

    def __repr__(self):
        gamma = self.gamma.get_config()
        args = ", ".join(f"{k}={gamma[k]!r}" for k in ("gamma_min", "gamma_max", "hidden_units") if k in gamma)
        return f"LearnedSchedule(gamma={type(self.gamma).__name__}({args}), bisection_steps={self.bisection_steps})"

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("gamma"), dict):
            config["gamma"] = keras.saving.deserialize_keras_object(config["gamma"])
        return cls(**config)
