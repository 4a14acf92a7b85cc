"""World models: a diffusion model of a game's next frame given past frames and actions (DIAMOND).

`WorldModel` trains on recorded episodes (`collect_minatar_episodes` plays
MinAtar offline under a fixed seed) and imagines trajectories with
`rollout`; `LearnedEnvironment` steps it like a gymnasium environment.
"""

from keras_score.world_model.encoder import ActionEmbedding
from keras_score.world_model.environment import LearnedEnvironment, starting_histories
from keras_score.world_model.minatar import breakout_tracker, collect_minatar_episodes, make_minatar_env
from keras_score.world_model.model import WorldModel
from keras_score.world_model.rollout import autoregressive_rollout
from keras_score.world_model.windows import transition_windows

__all__ = [
    "ActionEmbedding",
    "LearnedEnvironment",
    "WorldModel",
    "autoregressive_rollout",
    "breakout_tracker",
    "collect_minatar_episodes",
    "make_minatar_env",
    "starting_histories",
    "transition_windows",
]
