"""Samplers: integrate from the prior to data with any denoiser.

Get one by name with `get("heun")`, or use the classes directly.
"""

from keras_score.registry import resolve
from keras_score.samplers.base import (
    Sampler,
    denoiser_from_score,
    initial_noise,
    probability_flow,
    score_from_denoised,
)
from keras_score.samplers.ode import Euler, Heun
from keras_score.samplers.reverse_sde import EulerMaruyama
from keras_score.samplers.time_grids import time_grid

SAMPLERS = {cls.name: cls for cls in (Euler, Heun, EulerMaruyama)}


def get(identifier, **kwargs):
    """Returns a `Sampler` from a name, a config dict or an instance.

    Args:
        identifier: a name in `SAMPLERS` (e.g. "heun", "euler_maruyama"), a
            config dict, or a `Sampler`.
        **kwargs: constructor arguments when `identifier` is a name.

    Returns:
        A `Sampler`.

    Example:
    >>> get("heun")
    """
    return resolve(identifier, SAMPLERS, Sampler, "sampler", **kwargs)


__all__ = [
    "Sampler",
    "Euler",
    "Heun",
    "EulerMaruyama",
    "SAMPLERS",
    "get",
    "time_grid",
    "initial_noise",
    "denoiser_from_score",
    "score_from_denoised",
    "probability_flow",
]
