"""UniPC (Zhao et al. 2023): a multistep predictor and a corrector that costs no evaluation.

In data prediction D(x, t) ≈ E[x₀ | x_t = x] and λ = log(α/σ), a step from s
to t, h = λ_t − λ_s, expands D in λ through denoised values D_k at
λ_s + r_k·h besides D_s and integrates the linear part of the
probability-flow ODE exactly:

    x_t = (σ_t/σ_s)·x_s + α_t·(1 − e^{−h})·D_s + α_t·Σ_k w_k·(D_k − D_s)/r_k.

The predictor UniP-p takes p − 1 earlier values (r_k < 0); the corrector
UniC-p takes the same ones and D_t itself (r = 1), then x_t is recomputed.
With D_t evaluated at the predicted x_t, which is where the next step starts,
the corrector needs no evaluation of its own and raises the order from p to
p + 1. The weights solve Σ_k w_k·r_k^{j−1} = I_j for j = 1 … (number of
values), with I_j = h·∫₀¹ e^{−h(1−s)}·s^j ds = 1 − j!·φ_j(−h)
(φ₁(z) = (e^z − 1)/z, φ_{j+1}(z) = (φ_j(z) − 1/j!)/z): that is UniPC's linear
system for its coefficients a (in data prediction, where its B(h) is taken at
−h) with w = −B(−h)·a, so B cancels. Only a single value gets the paper's
fixed a = ½ instead, w = −B(−h)/2, and there B sets the variant: B(h) = h
("bh1", w = h/2) or e^h − 1 ("bh2", w = (1 − e^{−h})/2, which makes UniP-2
the DPM-Solver++(2M) step).
"""

import keras
from keras import ops

from keras_score.samplers.base import Sampler
from keras_score.validation import check_bool, check_choice, check_int

VARIANTS = ("bh1", "bh2")


def _half_log_snr(schedule, t):
    """λ = log(α/σ), half the log-SNR."""
    return 0.5 * schedule.log_snr(t)


def _integrals(h, n):
    """I_j = 1 − j!·φ_j(−h) for j = 1 … n: the exact integrals of (u/h)^j against e^{−(h−u)} on [0, h]."""
    phi = ops.expm1(-h) / -h
    factorial = 1.0
    integrals = []
    for j in range(1, n + 1):
        factorial *= j
        integrals.append(1.0 - factorial * phi)
        phi = (phi - 1.0 / factorial) / -h
    return integrals


def _weights(h, nodes, variant):
    """The weights w_k of the values at `nodes` r_k (UniPC's a_p times −B(−h)).

    For several nodes, w_k applies the moments I_j to the Lagrange basis
    polynomial ℓ_k(s) = Π_{l≠k}(s − r_l)/(r_k − r_l), which solves
    Σ_k w_k·r_k^{j−1} = I_j exactly.

    Args:
        h: the step in λ, a positive scalar tensor.
        nodes: the r_k, a list of scalar tensors (or 1.0).
        variant: "bh1" or "bh2", for a single node.

    Returns:
        List of scalar tensors, one per node.
    """
    if len(nodes) == 1:
        return [0.5 * h if variant == "bh1" else -0.5 * ops.expm1(-h)]
    integrals = _integrals(h, len(nodes))
    weights = []
    for k, r_k in enumerate(nodes):
        coefficients = [1.0]  # of Π_{l≠k}(s − r_l), constant term first
        denominator = 1.0
        for r_l in nodes[:k] + nodes[k + 1 :]:
            shifted = [0.0] + coefficients
            coefficients = [a - r_l * b for a, b in zip(shifted, coefficients + [0.0])]
            denominator = denominator * (r_k - r_l)
        weights.append(sum(c * moment for c, moment in zip(coefficients, integrals)) / denominator)
    return weights


@keras.saving.register_keras_serializable(package="keras_score")
class UniPC(Sampler):
    """UniPC: UniP-p predictor and UniC-p corrector in data prediction, order p + 1 (Zhao et al. 2023).

    At each grid time the denoiser is evaluated once, at the predicted x_i;
    that value first corrects x_i (UniC: x_i is recomputed from x_{i−1} with
    the new value added to the predictor's), then predicts x_{i+1} from the
    corrected x_i (UniP: the new value and the p − 1 before it). The first
    steps use the values available (order 1, 2, …). A last step that lands
    where σ = 0 is x ← α·D, which needs no correction, so N steps cost N
    evaluations; a grid that ends above σ = 0 ends with an uncorrected
    prediction. A trajectory holds the predicted states, where the denoiser
    is evaluated.

    Args:
        order: p ∈ {1, 2, 3}, the predictor's order; corrected steps have
            order p + 1. 2 (the default) is the most accurate at about 10
            evaluations in `benchmarks/samplers.py`.
        variant: "bh2" (B(h) = e^h − 1, the default) or "bh1" (B(h) = h), the
            B(h) of the fixed coefficient ½ of UniC-1 and UniP-2.
        lower_order_final: lower the order of the last steps as the
            reference code does by default: step i of N (i = 0 … N − 1),
            from x_i to x_{i+1}, predicts with order min(p, i + 1, N − i)
            instead of min(p, i + 1), so the prediction of the last point
            x_N is first order, that of x_{N−1} at most second order, and so
            on; the corrector of x_{i+1} uses the order of its prediction
            (see `prediction_orders`). This is diffusers'
            `UniPCMultistepScheduler` (`this_order = min(solver_order,
            len(timesteps) - step_index)`, then at most the warm-up order)
            and wl-zhao/UniPC's `step_order = min(order, steps + 1 - step)`.
            A last step to σ = 0 is first order either way, so with p = 2 on
            such a grid the flag changes nothing (`benchmarks/README.md`
            compares it with lowering one step earlier).

    Example:
    >>> x = UniPC().sample(denoise, x_T, schedule, steps=10)

    Reference: Zhao et al., "UniPC: A Unified Predictor-Corrector Framework
    for Fast Sampling of Diffusion Models", NeurIPS 2023, Alg. 1-3 (UniC,
    UniP and UniPC, data prediction).
    """

    name = "unipc"

    def __init__(self, order=2, variant="bh2", lower_order_final=True):
        self.order = check_int(order, "order", minimum=1, maximum=3)
        self.variant = check_choice(variant, "variant", VARIANTS)
        self.lower_order_final = check_bool(lower_order_final, "lower_order_final")

    def get_config(self):
        return {"order": self.order, "variant": self.variant, "lower_order_final": self.lower_order_final}

    def prediction_orders(self, steps):
        """The order of every step's prediction on a `steps`-step grid, a list of N ints.

        Entry i is the order of step i, which predicts x_{i+1} from x_i and
        the values before it: min(p, i + 1) (the values available), and at
        most N − i with `lower_order_final`. The corrector of x_{i+1} (at
        step i + 1) uses the same order.

        Example:
        >>> UniPC(order=3).prediction_orders(6)
        [1, 2, 3, 3, 2, 1]
        """
        steps = check_int(steps, "steps", minimum=1)
        orders = [min(self.order, i + 1) for i in range(steps)]
        if self.lower_order_final:
            orders = [min(order, steps - i) for i, order in enumerate(orders)]
        return orders

    def initial_state(self, x, times):
        """(the predictor's last α·Σ term, the last p denoised values and their λ, step index, orders).

        The orders are `prediction_orders(N)` as an int32 tensor. The zero
        placeholders are read only through `ops.where` branches that are
        not taken.
        """
        zero = ops.zeros((), dtype=x.dtype)
        return (
            ops.zeros_like(x),
            (ops.zeros_like(x),) * self.order,
            (zero,) * self.order,
            ops.zeros((), dtype="int32"),
            ops.convert_to_tensor(self.prediction_orders(times.shape[0] - 1), dtype="int32"),
        )

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        denoised = denoise(x, t_cur)
        alpha_next = schedule.alpha(t_next)
        if final:
            return alpha_next * denoised, state
        predicted, previous, lambdas, i, orders = state
        lam = _half_log_snr(schedule, t_cur)
        # UniC on x_i with the order of its prediction, made at step i − 1 (unused at step 0).
        correction = self._residual(
            lam - lambdas[0],
            previous[0],
            previous[1:],
            lambdas[0],
            lambdas[1:],
            ops.take(orders, ops.maximum(i - 1, 0)) - 1,
            denoised,
        )
        x = ops.where(i > 0, x - predicted + schedule.alpha(t_cur) * correction, x)
        h = _half_log_snr(schedule, t_next) - lam
        linear = schedule.sigma(t_next) / schedule.sigma(t_cur) * x - alpha_next * ops.expm1(-h) * denoised
        predicted = alpha_next * self._residual(
            h,
            denoised,
            previous[: self.order - 1],
            lam,
            lambdas[: self.order - 1],
            ops.take(orders, i) - 1,
        )
        state = (predicted, (denoised,) + previous[:-1], (lam,) + lambdas[:-1], i + 1, orders)
        return linear + predicted, state

    def _residual(self, h, base, values, lam_base, lambdas, count, new=None):
        """Σ_k w_k·(D_k − D_s)/r_k over the first `count` of `values` (and `new` at r = 1, if given).

        Args:
            h: the step in λ from the base point.
            base: D_s, the denoised value at the base point.
            values, lambdas: earlier denoised values and their λ, newest first.
            lam_base: λ of the base point.
            count: int32 scalar tensor, how many of `values` are used.
            new: D_t of the corrector, or None for the predictor.

        Returns:
            A tensor shaped like `base`.
        """
        nodes = [(lam_k - lam_base) / h for lam_k in lambdas]
        extra = [] if new is None else [1.0]
        zero = ops.zeros((), dtype=base.dtype)
        coefficients = [zero] * (len(values) + len(extra))  # w_k / r_k, per value; `new` last
        for n in range(len(values) + 1):
            used = nodes[:n] + extra
            if not used:
                continue
            scaled = [w / r for w, r in zip(_weights(h, used, self.variant), used)]
            candidate = scaled[:n] + [zero] * (len(values) - n) + scaled[n:]
            coefficients = [ops.where(count == n, c, old) for c, old in zip(candidate, coefficients)]
        total = ops.zeros_like(base)
        for c, value in zip(coefficients, list(values) + ([new] if extra else [])):
            total = total + c * (value - base)
        return total
