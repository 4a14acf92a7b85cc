"""Transitions of recorded episodes: k frames and k actions, and the frame that followed."""

import numpy as np

from keras_score import validation


def check_episodes(episodes):
    """Validates episodes: a non-empty list of dicts of "frames" (T + 1, H, W, C) and integer "actions" (T,)."""
    layout = "{'frames': (T + 1, H, W, C), 'actions': (T,)}"
    episodes = validation.check_episode_list(episodes, ("frames", "actions"), layout)
    checked = []
    for i, episode in enumerate(episodes):
        frames, actions = np.asarray(episode["frames"]), np.asarray(episode["actions"])
        if frames.ndim != 4 or actions.ndim != 1 or len(frames) != len(actions) + 1:
            raise ValueError(
                f"`episodes[{i}]` must hold frames (T + 1, H, W, C) and actions (T,); "
                f"received shapes {frames.shape} and {actions.shape}."
            )
        if actions.dtype.kind not in "iu" or np.any(actions < 0):
            raise ValueError(f"`episodes[{i}]['actions']` must be non-negative integers.")
        if checked and frames.shape[1:] != checked[0][0].shape[1:]:
            raise ValueError(f"`episodes[{i}]` has frames {frames.shape[1:]}; `episodes[0]` {checked[0][0].shape[1:]}.")
        checked.append((frames, actions.astype("int32")))
    return checked


def transition_windows(episodes, context_frames):
    """Every (k frames, k actions, next frame) of a set of episodes.

    For t = k − 1 … T − 1: the frames t − k + 1 … t, the actions taken in
    them, and frame t + 1, which followed action t.

    Args:
        episodes: list of dicts {"frames": (T + 1, H, W, C), "actions": (T,)}.
        context_frames: k.

    Returns:
        `(frames, actions, next_frames)` of shapes (n, k, H, W, C), (n, k) int32 and (n, H, W, C).

    Example:
    >>> episode = {"frames": np.arange(6)[:, None, None, None], "actions": np.arange(5)}
    >>> frames, actions, targets = transition_windows([episode], 2)
    >>> frames[0, :, 0, 0, 0], actions[0], targets[0, 0, 0, 0]
    (array([0, 1]), array([0, 1], dtype=int32), 2)
    """
    k = validation.check_int(context_frames, "context_frames", minimum=1)
    frames, actions, targets = [], [], []
    for episode_frames, episode_actions in check_episodes(episodes):
        steps = np.arange(k - 1, len(episode_actions))
        if not len(steps):
            continue
        window = steps[:, None] + np.arange(-k + 1, 1)
        frames.append(episode_frames[window])
        actions.append(episode_actions[window])
        targets.append(episode_frames[steps + 1])
    if not frames:
        raise ValueError(f"No episode is longer than `context_frames` ({k}) actions.")
    return np.concatenate(frames), np.concatenate(actions), np.concatenate(targets)
