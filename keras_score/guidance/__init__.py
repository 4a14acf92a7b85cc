"""Guidance at sampling time: classifier, measurement-gradient and inpainting guidance.

Classifier-free guidance belongs to a conditional `ScoreModel` and is asked
for with `model.generate(n, labels=..., guidance_scale=w)`; the objects here
are passed as `generate(..., guidance=...)` (or `Sampler.sample`), alone or
in a list, and work with every sampler, schedule and parameterization.
"""

from keras_score.guidance.base import CompositeGuidance, Guidance, NullGuidance, add_to_score, get, slice_conditions
from keras_score.guidance.classifier import ClassifierGuidance, NoisyClassifier
from keras_score.guidance.classifier_free import classifier_free_guidance
from keras_score.guidance.gradient import GradientGuidance
from keras_score.guidance.inpainting import Inpainting

__all__ = [
    "Guidance",
    "NullGuidance",
    "CompositeGuidance",
    "ClassifierGuidance",
    "NoisyClassifier",
    "classifier_free_guidance",
    "GradientGuidance",
    "Inpainting",
    "add_to_score",
    "get",
    "slice_conditions",
]
