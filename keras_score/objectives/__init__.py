"""Training objectives: how a denoiser learns the score of the data.

Choose one with `ScoreModel(objective=...)`, by name or as an object.
"""

from keras_score.objectives.base import Objective
from keras_score.objectives.denoising import DenoisingScoreMatching
from keras_score.objectives.exact import ExactScoreMatching
from keras_score.objectives.sliced import SlicedScoreMatching
from keras_score.objectives.variational import VariationalBound
from keras_score.registry import resolve

OBJECTIVES = {
    cls.name: cls for cls in (DenoisingScoreMatching, SlicedScoreMatching, ExactScoreMatching, VariationalBound)
}


def get(identifier):
    """Returns an `Objective` from a name in `OBJECTIVES`, a config dict or an instance.

    Example:
    >>> get("dsm")
    """
    return resolve(identifier, OBJECTIVES, Objective, "objective")


__all__ = [
    "Objective",
    "DenoisingScoreMatching",
    "SlicedScoreMatching",
    "ExactScoreMatching",
    "VariationalBound",
    "OBJECTIVES",
    "get",
]
