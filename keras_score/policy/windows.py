"""Training windows of a diffusion policy: observation histories and the action chunks that follow them."""

import numpy as np

from keras_score import validation


def check_steps(n_obs_steps, horizon, n_action_steps):
    """Validates the three lengths of a chunked policy; returns them as ints.

    The chunk of `horizon` actions starts at the oldest observation of the
    history, so the actions executed after observing step t are the chunk's
    entries n_obs_steps − 1 … n_obs_steps − 2 + n_action_steps, which must
    lie inside it.

    Args:
        n_obs_steps: observations in the history, ≥ 1.
        horizon: actions in a predicted chunk.
        n_action_steps: actions executed before planning again, ≥ 1.

    Returns:
        `(n_obs_steps, horizon, n_action_steps)`.
    """
    n_obs_steps = validation.check_int(n_obs_steps, "n_obs_steps", minimum=1)
    horizon = validation.check_int(horizon, "horizon", minimum=1)
    n_action_steps = validation.check_int(n_action_steps, "n_action_steps", minimum=1)
    if n_obs_steps - 1 + n_action_steps > horizon:
        raise ValueError(
            "`horizon` must cover the executed actions, n_obs_steps − 1 + n_action_steps = "
            f"{n_obs_steps - 1 + n_action_steps}; received horizon={horizon}."
        )
    return n_obs_steps, horizon, n_action_steps


def check_episodes(episodes):
    """Validates demonstrations: a non-empty list of dicts of finite "observations" (T, d) and "actions" (T, a)."""
    episodes = validation.check_episode_list(
        episodes, ("observations", "actions"), "{'observations': (T, d), 'actions': (T, a)}"
    )
    checked = []
    for i, episode in enumerate(episodes):
        obs = np.asarray(episode["observations"], dtype="float32")
        actions = np.asarray(episode["actions"], dtype="float32")
        if obs.ndim != 2 or actions.ndim != 2 or len(obs) != len(actions) or len(obs) == 0:
            raise ValueError(
                f"`episodes[{i}]` must hold observations (T, d) and actions (T, a) of the same length T ≥ 1; "
                f"received shapes {obs.shape} and {actions.shape}."
            )
        if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(actions))):
            raise ValueError(f"`episodes[{i}]` holds NaN or Inf values.")
        if checked and (obs.shape[1] != checked[0][0].shape[1] or actions.shape[1] != checked[0][1].shape[1]):
            raise ValueError(
                f"`episodes[{i}]` has {obs.shape[1]}-D observations and {actions.shape[1]}-D actions; "
                f"`episodes[0]` has {checked[0][0].shape[1]} and {checked[0][1].shape[1]}."
            )
        checked.append((obs, actions))
    return checked


def demonstration_windows(episodes, n_obs_steps=2, horizon=16, n_action_steps=8):
    """Every (observation history, action chunk) pair of a set of demonstrations.

    A window of `horizon` steps starts at s: the history is the
    observations s … s + n_obs_steps − 1 and the chunk the actions s … s +
    horizon − 1. The starts run from −(n_obs_steps − 1) (the first step's
    history padded with copies of the first observation, as a policy sees
    it at an episode's start) to T − horizon + n_action_steps − 1, past the
    end padded with copies of the last action, so that every executed
    action of every step is trained on (Diffusion Policy's
    `SequenceSampler` with pad_before = n_obs_steps − 1 and pad_after =
    n_action_steps − 1).

    Args:
        episodes: list of dicts {"observations": (T, d), "actions": (T, a)},
            the observation before each action.
        n_obs_steps: observations in a history.
        horizon: actions in a chunk.
        n_action_steps: actions executed per chunk.

    Returns:
        `(observations, actions)`: float32 arrays of shapes (n, n_obs_steps, d)
        and (n, horizon, a).

    Example:
    >>> episode = {"observations": np.arange(5.0)[:, None], "actions": np.arange(5.0)[:, None]}
    >>> obs, actions = demonstration_windows([episode], n_obs_steps=2, horizon=4, n_action_steps=2)
    >>> obs[0, :, 0], actions[0, :, 0]
    (array([0., 0.], dtype=float32), array([0., 0., 1., 2.], dtype=float32))

    Reference: Chi et al., "Diffusion Policy", RSS 2023 (real-stanford/diffusion_policy, `sampler.py`).
    """
    n_obs_steps, horizon, n_action_steps = check_steps(n_obs_steps, horizon, n_action_steps)
    histories, chunks = [], []
    for obs, actions in check_episodes(episodes):
        length = len(obs)
        starts = np.arange(-(n_obs_steps - 1), max(length - horizon + n_action_steps, 1))
        histories.append(obs[np.clip(starts[:, None] + np.arange(n_obs_steps), 0, length - 1)])
        chunks.append(actions[np.clip(starts[:, None] + np.arange(horizon), 0, length - 1)])
    return np.concatenate(histories), np.concatenate(chunks)
