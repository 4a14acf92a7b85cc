"""`LearnedEnvironment`: a world model stepped like a gymnasium environment, a learned simulator of the game."""

import numpy as np

from keras_score import validation


class LearnedEnvironment:
    """A gymnasium-style environment whose frames come from a `WorldModel` instead of the game.

    `reset` draws one of the starting histories (k real frames and the k − 1
    actions taken between them, e.g. `starting_histories(episodes, k)`);
    `step(action)` imagines the next frame from the last k frames and
    actions. The world model predicts frames only, so the reward is 0 and
    episodes end by truncation after `max_steps` (a reward and termination
    model, as DIAMOND trains beside its denoiser, is not part of it).

    Args:
        model: a trained `WorldModel`.
        frames: starting frames, (n, k, H, W, C) on the levels.
        past_actions: (n, k − 1), the actions taken in all but each start's newest frame.
        max_steps: steps before an episode is truncated.

    Example:
    >>> env = LearnedEnvironment(model, *starting_histories(episodes, 4))
    >>> frame, info = env.reset(seed=0)
    >>> frame, reward, terminated, truncated, info = env.step(3)
    """

    def __init__(self, model, frames, past_actions, max_steps=100):
        self.model = model
        self.frames = np.asarray(frames)
        self.past_actions = np.asarray(past_actions, dtype="int32")
        k = model.context_frames
        if self.frames.ndim != 5 or self.frames.shape[1] != k or self.past_actions.shape != (len(self.frames), k - 1):
            raise ValueError(
                f"`frames` must have shape (n, {k}, H, W, C) and `past_actions` (n, {k - 1}); "
                f"received {self.frames.shape} and {self.past_actions.shape}."
            )
        self.max_steps = validation.check_int(max_steps, "max_steps", minimum=1)
        self.rng = np.random.default_rng()
        self.history = self.taken = None
        self.steps = 0

    def reset(self, seed=None, options=None):
        """Starts from a random starting history; returns (newest frame, info)."""
        if seed is not None:
            self.rng = np.random.default_rng(validation.check_seed(seed))
        start = int(self.rng.integers(len(self.frames)))
        self.history, self.taken, self.steps = self.frames[start : start + 1], self.past_actions[start : start + 1], 0
        return self.history[0, -1], {"start": start}

    def step(self, action):
        """Imagines the frame after `action`; returns (frame, 0.0, False, truncated, info)."""
        if self.history is None:
            raise ValueError("Call `reset` before `step`.")
        action = validation.check_int(int(action) if np.ndim(action) == 0 else action, "action", 0,
                                      self.model.num_actions - 1)
        seed = int(self.rng.integers(validation.SEED_MAX))
        frame = self.model.rollout(self.history, self.taken, [[action]], seed=seed)[:, 0]
        self.history = np.concatenate([self.history[:, 1:], frame[:, None]], axis=1)
        self.taken = np.concatenate([self.taken, [[action]]], axis=1)[:, 1:]
        self.steps += 1
        return frame[0], 0.0, False, self.steps >= self.max_steps, {}


def starting_histories(episodes, context_frames):
    """The first k frames and k − 1 actions of every episode long enough: starts for rollouts and `LearnedEnvironment`.

    Args:
        episodes: list of dicts {"frames": (T + 1, H, W, C), "actions": (T,)}.
        context_frames: k.

    Returns:
        `(frames, past_actions)` of shapes (n, k, H, W, C) and (n, k − 1).
    """
    k = validation.check_int(context_frames, "context_frames", minimum=1)
    long_enough = [e for e in episodes if len(e["actions"]) >= k - 1]
    if not long_enough:
        raise ValueError(f"No episode has the {k} frames of a starting history.")
    frames = np.stack([np.asarray(e["frames"][:k]) for e in long_enough])
    past_actions = np.stack([np.asarray(e["actions"][: k - 1], dtype="int32") for e in long_enough])
    return frames, past_actions
