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
from keras_score.samplers.ddim import DDIM
from keras_score.samplers.dpm_solver import DPMSolverPP2M, DPMSolverPP2MSDE, DPMSolverPP3M
from keras_score.samplers.edm import EDMHeun, EDMStochastic
from keras_score.samplers.langevin import AnnealedLangevin, Langevin
from keras_score.samplers.ode import RK4, RK45, Euler, Heun
from keras_score.samplers.predictor_corrector import DDPMAncestral, PredictorCorrector
from keras_score.samplers.reverse_sde import EulerMaruyama
from keras_score.samplers.time_grids import time_grid
from keras_score.samplers.unipc import UniPC

SAMPLERS = {
    cls.name: cls
    for cls in (
        Euler,
        Heun,
        RK4,
        RK45,
        EulerMaruyama,
        EDMHeun,
        EDMStochastic,
        DPMSolverPP2M,
        DPMSolverPP2MSDE,
        DPMSolverPP3M,
        UniPC,
        DDIM,
        DDPMAncestral,
        PredictorCorrector,
        Langevin,
        AnnealedLangevin,
    )
}


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
    "RK4",
    "RK45",
    "EDMHeun",
    "EDMStochastic",
    "DPMSolverPP2M",
    "DPMSolverPP2MSDE",
    "DPMSolverPP3M",
    "UniPC",
    "DDIM",
    "DDPMAncestral",
    "PredictorCorrector",
    "Langevin",
    "AnnealedLangevin",
    "SAMPLERS",
    "get",
    "time_grid",
    "initial_noise",
    "denoiser_from_score",
    "score_from_denoised",
    "probability_flow",
]
