"""The autoregressive rollout: each predicted frame becomes the newest frame of the history."""

import numpy as np


def autoregressive_rollout(next_frame, frames, past_actions, actions):
    """Imagines T frames with a one-step model, feeding each prediction back into its k-frame history.

    Shared by `WorldModel.rollout` and by any other next-frame model one
    wants to roll out the same way (the benchmark's MSE regressor).

    Args:
        next_frame: callable(history (b, k, H, W, C), actions (b, k), j) → (b, H, W, C), the frame
            after the history when actions[:, −1] is taken in its newest frame; j is the step's index.
        frames: the k starting frames, (b, k, H, W, C).
        past_actions: (b, k − 1), the actions taken in all but the newest starting frame.
        actions: (b, T), the actions to imagine under; actions[:, 0] is taken in the newest frame.

    Returns:
        numpy array (b, T, H, W, C): the frames after each action.

    Example:
    >>> shift = lambda history, taken, j: np.roll(history[:, -1], taken[:, -1][0], axis=1)
    >>> frames = np.eye(3, dtype="uint8")[None, None, :, :, None].repeat(2, axis=1)
    >>> autoregressive_rollout(shift, frames, [[0]], [[1, 1]]).shape
    (1, 2, 3, 3, 1)

    Reference: Alonso et al. 2024 (DIAMOND), imagination in the world model.
    """
    frames = np.asarray(frames)
    if frames.ndim != 5:
        raise ValueError(f"`frames` must have shape (batch, k, H, W, C); received shape {frames.shape}.")
    batch, k = frames.shape[:2]
    past_actions = np.asarray(past_actions, dtype="int32")
    if past_actions.size == 0:
        past_actions = past_actions.reshape(batch, 0)
    if past_actions.shape != (batch, k - 1):
        raise ValueError(f"`past_actions` must have shape ({batch}, {k - 1}); received shape {past_actions.shape}.")
    actions = np.asarray(actions, dtype="int32")
    if actions.ndim != 2 or len(actions) != batch:
        raise ValueError(f"`actions` must have shape ({batch}, T); received shape {actions.shape}.")
    history, taken, imagined = frames, past_actions, []
    for j in range(actions.shape[1]):
        taken = np.concatenate([taken, actions[:, j : j + 1]], axis=1)
        frame = np.asarray(next_frame(history, taken, j))
        imagined.append(frame)
        history = np.concatenate([history[:, 1:], frame[:, None]], axis=1)
        taken = taken[:, 1:]
    return np.stack(imagined, axis=1)
