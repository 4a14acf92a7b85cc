"""Diffusion policies: action chunks conditioned on observation histories, run by receding-horizon control.

`DiffusionPolicy` (Chi et al. 2023) and its mode-averaging baseline
`RegressionPolicy` train on demonstrations (`collect_demonstrations` from an
expert, cut into windows by `demonstration_windows`) and run in
gymnasium-style environments by `rollout`. `ObstacleReach` is a task whose
expert goes left or right of an obstacle with probability ½; `make_pusht_env`
is the paper's Push-T (gym-pusht, imported when called) and `PushTExpert`
its offline planning expert.
"""

from keras_score.policy.chunked import ChunkedPolicy
from keras_score.policy.control import Rollouts, collect_demonstrations, rollout
from keras_score.policy.diffusion_policy import DiffusionPolicy
from keras_score.policy.encoder import ObservationEncoder
from keras_score.policy.pusht import PushTExpert, collect_pusht_demonstrations, make_pusht_env
from keras_score.policy.reach import ObstacleReach, RouteExpert
from keras_score.policy.regression import RegressionPolicy
from keras_score.policy.windows import demonstration_windows

__all__ = [
    "ChunkedPolicy",
    "DiffusionPolicy",
    "ObservationEncoder",
    "ObstacleReach",
    "PushTExpert",
    "RegressionPolicy",
    "RouteExpert",
    "Rollouts",
    "collect_demonstrations",
    "collect_pusht_demonstrations",
    "demonstration_windows",
    "make_pusht_env",
    "rollout",
]
