"""keras_score: score-based (diffusion) generative models for Keras 3 on TensorFlow, JAX and PyTorch.

The package imports lazily (`keras_score.lazy`): `import keras_score` imports
no Keras, so that the `keras-score` command line can choose the backend
first. Every module is imported, and every class registered with Keras,
the moment Keras is imported or a public name below is first used.
"""

from keras_score.lazy import LazyPackage

_PACKAGE = LazyPackage(
    modules=[
        "backend",
        "callbacks",
        "checkpoint",
        "conditioning",
        "datasets",
        "ema",
        "guidance",
        "images",
        "likelihood",
        "metrics",
        "networks",
        "noise_levels",
        "normalization",
        "objectives",
        "parameterization",
        "policy",
        "precision",
        "samplers",
        "schedules",
        "tables",
        "weighting",
        "world_model",
        "denoiser",
        "model",
        "sde",
    ],
    exports={
        "Denoiser": "denoiser",
        "ImageModel": "images",
        "ScoreModel": "model",
        "DenoisingScoreMatching": "objectives",
        "Objective": "objectives",
        "DataPrediction": "parameterization",
        "EDMPreconditioning": "parameterization",
        "EpsilonPrediction": "parameterization",
        "Parameterization": "parameterization",
        "ScorePrediction": "parameterization",
        "VelocityPrediction": "parameterization",
        "Sampler": "samplers",
        "CosineSchedule": "schedules",
        "EDMSchedule": "schedules",
        "NoiseSchedule": "schedules",
        "SubVPSchedule": "schedules",
        "VESchedule": "schedules",
        "VPSchedule": "schedules",
        "SDE": "sde",
    },
)

__version__ = "0.1.0"
__all__ = sorted([*_PACKAGE.modules, *_PACKAGE.exports])


def __getattr__(name):
    return _PACKAGE.attribute(name)


def __dir__():
    return sorted([*globals(), *__all__])


def is_loaded():
    """Whether every keras_score module has been imported (so that every class is registered with Keras)."""
    return _PACKAGE.loaded


_PACKAGE.start()
