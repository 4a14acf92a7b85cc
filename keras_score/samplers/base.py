"""The `Sampler` base class: one compiled loop, subclasses write one step.

A sampler integrates from t = t_max to the end of a time grid, given any
denoiser `denoise(x, t) ≈ E[x₀ | x_t = x]` (a trained model or an exact
mixture's) and its `NoiseSchedule`. The loop runs inside `keras.ops.fori_loop`
and is compiled as a whole by `keras_score.backend.compile_function`, so JAX
and TensorFlow dispatch once per call, not once per step.
"""

import keras
import numpy as np
from keras import ops

from keras_score import backend
from keras_score.conditioning import check_labels
from keras_score.guidance import base as guidance_lib
from keras_score.registry import Configurable
from keras_score.samplers import time_grids
from keras_score.sde import expand_to
from keras_score.validation import SEED_MAX, check_bool, check_int

_NOISE_DRAWS_PER_STEP = 16
# `initial_noise` draws rows in blocks of 1024 rows, fewer when a block would
# hold more than 2¹⁸ values (2 MiB in float64), e.g. for images.
_NOISE_BLOCK_ROWS = 1024
_NOISE_BLOCK_VALUES = 2**18
# Guidance draws its noise (e.g. inpainting's noised known values) from a
# separate range of counters, so guided and unguided runs share the
# sampler's own noise.
_GUIDANCE_NOISE_OFFSET = 2**30


def score_from_denoised(schedule, x, t, denoised):
    """∇log p_t(x) = (α·D − x)/σ²."""
    alpha = expand_to(schedule.alpha(t), x)
    sigma = expand_to(schedule.sigma(t), x)
    return (alpha * denoised - x) / sigma**2


def probability_flow(schedule, x, t, denoised):
    """dx/dt = f·x − ½·g²·∇log p_t(x) (Song et al. 2021, Eq. 13)."""
    f = expand_to(schedule.drift_coefficient(t), x)
    g2 = expand_to(schedule.diffusion_squared(t), x)
    return f * x - 0.5 * g2 * score_from_denoised(schedule, x, t, denoised)


def denoiser_from_score(score_fn, schedule):
    """Turns a score function s(x, t) into the denoiser D = (x + σ²·s)/α."""

    def denoise(x, t):
        alpha = expand_to(schedule.alpha(t), x)
        sigma = expand_to(schedule.sigma(t), x)
        return (x + sigma**2 * score_fn(x, t)) / alpha

    return denoise


def guided_denoiser(denoise, schedule, guidance, conditions, seed):
    """The denoiser and the state projection of a guided run.

    Args:
        denoise: `denoise(x, t, **conditions["denoiser"])`.
        schedule: the `NoiseSchedule`.
        guidance: a `Guidance`.
        conditions: None or a dict with optional "denoiser" and "guidance" entries.
        seed: the run's integer seed tensor.

    Returns:
        Tuple (guided `denoise(x, t)`, `project(x, t, counter)`): the guidance's
        projection, whose noise is drawn from (seed, counter) in a range of
        counters apart from the sampler's own.
    """
    conditions = conditions or {}
    denoiser_kwargs = conditions.get("denoiser") or {}
    guidance_conditions = conditions.get("guidance") or {}
    conditioned = (lambda x, t: denoise(x, t, **denoiser_kwargs)) if denoiser_kwargs else denoise

    def project(x, t, counter):
        def noise():
            return backend.stateless_normal(ops.shape(x), seed, _GUIDANCE_NOISE_OFFSET + counter, x.dtype)

        return guidance.project(x, t, schedule, guidance_conditions, noise)

    return guidance.denoiser(conditioned, schedule, guidance_conditions), project


def initial_noise(num_samples, shape, seed, start=0):
    """Standard normal noise whose row i depends only on (seed, i), not on `num_samples`.

    Rows are drawn in fixed blocks (`noise_block_rows(shape)` rows each, at
    most 1024) from `np.random.default_rng([seed, block])`, so that the rows
    [start, start + num_samples) of a long run can be drawn alone, batch by
    batch, in memory proportional to the batch. Drawn on the host with
    NumPy, so it is also identical on every backend.

    Args:
        num_samples: number of rows.
        shape: shape of one sample.
        seed: non-negative integer.
        start: index of the first row.

    Returns:
        numpy array of shape (num_samples, *shape) and dtype `keras.config.floatx()`.

    Example:
    >>> np.array_equal(initial_noise(3, (2,), 0, start=5), initial_noise(8, (2,), 0)[5:])
    True
    """
    num_samples = check_int(num_samples, "num_samples", minimum=0)
    seed = check_int(seed, "seed", minimum=0)
    start = check_int(start, "start", minimum=0)
    shape = tuple(shape)
    rows_per_block = noise_block_rows(shape)
    first, stop = start // rows_per_block, -(-(start + num_samples) // rows_per_block)
    dtype = keras.config.floatx()
    noise = np.empty((num_samples, *shape), dtype)
    for block in range(first, stop):
        block_start = block * rows_per_block
        lo, hi = max(start, block_start), min(start + num_samples, block_start + rows_per_block)
        rows = np.random.default_rng([seed, block]).standard_normal((rows_per_block, *shape))
        noise[lo - start : hi - start] = rows[lo - block_start : hi - block_start]
    return noise


def noise_block_rows(shape):
    """Rows per block of `initial_noise`: 1024, fewer for large samples (a block holds at most 2¹⁸ values)."""
    return max(1, min(_NOISE_BLOCK_ROWS, _NOISE_BLOCK_VALUES // max(1, int(np.prod(shape, dtype=np.int64)))))


class Sampler(Configurable):
    """Base class of samplers.

    Subclasses implement `step` (and `initial_state` when they carry
    information between steps, like multistep methods) and
    `num_function_evals`. `compile` returns the compiled run, whose result
    is a dict with the samples and the number of denoiser evaluations; it
    is the one place that count comes from, for fixed-step and adaptive
    samplers alike.

    Example:
    >>> from keras_score.samplers import Heun
    >>> from keras_score.schedules import EDMSchedule
    >>> schedule = EDMSchedule()
    >>> x, nfe = Heun().sample(
    ...     lambda x, t: 0.0 * x, 80.0 * ops.ones((4, 2)), schedule, steps=8, return_num_function_evals=True
    ... )  # nfe == 15
    """

    name = None
    stochastic = False

    def num_function_evals(self, steps, ends_at_zero=True):
        """Number of denoiser calls of a `steps`-step run (`ends_at_zero`: the grid ends where σ = 0)."""
        return steps

    def initial_state(self, x, times):
        """Tensors carried from step to step (a tuple; empty by default).

        Args:
            x: the initial state.
            times: the whole time grid, shape (N + 1,).
        """
        return ()

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        """One step from `t_cur` to `t_next`.

        Args:
            denoise: the denoiser `denoise(x, t)`.
            schedule: the `NoiseSchedule`.
            x: the current state, at time `t_cur`.
            t_cur, t_next: scalar tensors, t_next < t_cur.
            state: the tuple returned by the previous step.
            noise: `noise(j=0)` returns fresh standard normal noise shaped like x.
            final: None for all but the last step; for the last step, True if
                it lands where σ = 0 and False otherwise.

        Returns:
            Tuple (x_next, state).
        """
        raise NotImplementedError

    def make_time_grid(self, schedule, steps, time_grid):
        """The decreasing times of a run: `keras_score.samplers.time_grid(schedule, steps, time_grid)`.

        Adaptive samplers override it to choose a grid when `steps` is None.
        """
        return time_grids.time_grid(schedule, steps, time_grid)

    def guided_step(self, denoise, schedule, x, t_cur, t_next, state, noise, final, project):
        """`step` followed by the guidance's `project(x, t, j)` at the time the step lands.

        The last step projects with t = None: onto the clean known values.
        Samplers with sub-steps (predictor–corrector) override this to
        project after each of them.
        """
        x, state = self.step(denoise, schedule, x, t_cur, t_next, state, noise, final)
        return project(x, None if final is not None else t_next, 0), state

    def sample(
        self,
        denoise,
        x_init,
        schedule,
        steps=None,
        time_grid="karras",
        seed=0,
        return_trajectory=False,
        variables=(),
        guidance=None,
        labels=None,
        condition=None,
        return_num_function_evals=False,
    ):
        """Integrates from `x_init` at t_max to the end of the time grid.

        Args:
            denoise: callable `denoise(x, t) -> E[x₀ | x_t = x]`; use
                `denoiser_from_score` to pass a score function.
            x_init: initial state at t_max, e.g. prior noise, shape (n, ...).
            schedule: the `NoiseSchedule` the denoiser belongs to.
            steps: number of steps N (not needed when `time_grid` is a list).
            time_grid: "karras", "uniform", "log_snr" or a decreasing list of times.
            seed: integer seed in [0, 2³¹ − 1] of the noise that stochastic samplers add.
            return_trajectory: also return the states at every grid time.
            variables: Keras variables read by `denoise` (`model.variables`),
                needed to compile stateless on JAX.
            guidance: None, a `keras_score.guidance.Guidance` or a list of them,
                acting in the denoiser's own space.
            labels: int labels of shape (n,) read by the guidance (e.g.
                `ClassifierGuidance`).
            condition: dict of per-sample arrays (first axis n) passed to
                the denoiser as keyword arguments, `denoise(x, t, **condition)`.
            return_num_function_evals: also return the number of denoiser
                evaluations of the run, a Python int.

        Returns:
            The final samples, or a tuple `(samples, trajectory)`,
            `(samples, num_function_evals)` or `(samples, trajectory,
            num_function_evals)`, with the trajectory of shape (N + 1, n, ...).
        """
        seed = check_int(seed, "seed", minimum=0, maximum=SEED_MAX)
        return_trajectory = check_bool(return_trajectory, "return_trajectory")
        return_num_function_evals = check_bool(return_num_function_evals, "return_num_function_evals")
        times = self.make_time_grid(schedule, steps, time_grid)
        zero_end = time_grids.lands_on_data(schedule, times)
        guidance = guidance_lib.get(guidance)
        x_init = ops.convert_to_tensor(x_init, dtype=keras.config.floatx())
        num_samples, data_shape = x_init.shape[0], tuple(x_init.shape[1:])
        labels = None if labels is None else check_labels(labels, np.iinfo("int32").max, num_samples)
        conditions = {"guidance": guidance.prepare(num_samples, data_shape, labels)}
        if condition:
            conditions["denoiser"] = {key: ops.convert_to_tensor(value) for key, value in condition.items()}
        run = self.compile(denoise, schedule, zero_end, return_trajectory, list(variables) + guidance.variables, guidance)
        seed = ops.convert_to_tensor(seed, dtype="int32")
        result = run(x_init, ops.convert_to_tensor(times, dtype=keras.config.floatx()), seed, conditions)
        outputs = (result["x"],)
        if return_trajectory:
            outputs += (result["trajectory"],)
        if return_num_function_evals:
            outputs += (int(ops.convert_to_numpy(result["num_function_evals"])),)
        return outputs if len(outputs) > 1 else outputs[0]

    def compile(self, denoise, schedule, zero_end, return_trajectory=False, variables=(), guidance=None):
        """Returns the compiled `run(x_init, times, seed, conditions=None)` of this sampler.

        `run` takes the initial state (n, ...) at `times[0]`, the decreasing
        time grid (N + 1,), an int32 seed tensor and the conditions, and
        returns a dict: "x", the samples (n, ...); "num_function_evals", the
        number of denoiser evaluations of the run as an int32 scalar tensor
        (for fixed-step samplers `num_function_evals(N, zero_end)`); and, with
        `return_trajectory`, "trajectory", the states at every grid time,
        (N + 1, n, ...).

        Args:
            denoise: `denoise(x, t, **kwargs)`, with kwargs the tensors of
                `conditions["denoiser"]` (e.g. a model's labels).
            schedule: the `NoiseSchedule`.
            zero_end: whether the grid ends where σ = 0.
            return_trajectory: also return the states at every grid time.
            variables: Keras variables read inside the loop.
            guidance: a `Guidance` (None: no guidance) reading the tensors of
                `conditions["guidance"]`.

        Returns:
            The function `run(x_init, times, seed, conditions=None) -> dict`.

        Example:
        >>> run = Heun().compile(denoise, schedule, zero_end=True)
        >>> result = run(x_T, ops.convert_to_tensor(time_grid(schedule, 8)), ops.convert_to_tensor(0, "int32"))
        >>> result["x"], result["num_function_evals"]  # 15 evaluations
        """
        guidance = guidance_lib.get(guidance)

        def run(x, times, seed, conditions=None):
            guided, project = guided_denoiser(denoise, schedule, guidance, conditions, seed)
            num_steps = times.shape[0] - 1

            def projection(i):
                return lambda x, t, j: project(x, t, i * _NOISE_DRAWS_PER_STEP + j)

            def advance(i, x, state, trajectory, final):
                def noise(j=0):
                    if not 0 <= j < _NOISE_DRAWS_PER_STEP:
                        raise ValueError(
                            f"A sampler step may draw at most {_NOISE_DRAWS_PER_STEP} noise tensors; "
                            f"draw {j} was requested."
                        )
                    counter = i * _NOISE_DRAWS_PER_STEP + j
                    return backend.stateless_normal(ops.shape(x), seed, counter, x.dtype)

                x, state = self.guided_step(
                    guided, schedule, x, times[i], times[i + 1], state, noise, final, projection(i + 1)
                )
                if return_trajectory:
                    trajectory = ops.slice_update(
                        trajectory, (i + 1,) + (0,) * len(x.shape), x[None]
                    )
                return x, state, trajectory

            x = projection(0)(x, times[0], 0)
            trajectory = ()
            if return_trajectory:
                trajectory = ops.zeros((num_steps + 1,) + tuple(x.shape), dtype=x.dtype)
                trajectory = ops.slice_update(trajectory, (0,) * (len(x.shape) + 1), x[None])
            carry = (x, self.initial_state(x, times), trajectory)
            carry = ops.fori_loop(
                0, num_steps - 1, lambda i, c: advance(i, *c, final=None), carry
            )
            x, _, trajectory = advance(num_steps - 1, *carry, final=zero_end)
            nfe = ops.convert_to_tensor(self.num_function_evals(num_steps, zero_end), dtype="int32")
            result = {"x": x, "num_function_evals": nfe}
            if return_trajectory:
                result["trajectory"] = trajectory
            return result

        return backend.compile_function(run, variables)


