"""keras_score: score-based (diffusion) generative models for Keras 3 on TensorFlow, JAX and PyTorch."""

from keras_score import (
    backend,
    callbacks,
    conditioning,
    datasets,
    guidance,
    likelihood,
    metrics,
    networks,
    noise_levels,
    objectives,
    parameterization,
    samplers,
    schedules,
    tables,
    weighting,
)
from keras_score.denoiser import Denoiser
from keras_score.model import ScoreModel
from keras_score.objectives import DenoisingScoreMatching, Objective
from keras_score.parameterization import (
    DataPrediction,
    EDMPreconditioning,
    EpsilonPrediction,
    Parameterization,
    ScorePrediction,
    VelocityPrediction,
)
from keras_score.samplers import Sampler
from keras_score.schedules import (
    CosineSchedule,
    EDMSchedule,
    NoiseSchedule,
    SubVPSchedule,
    VESchedule,
    VPSchedule,
)
from keras_score.sde import SDE

__version__ = "0.1.0"
