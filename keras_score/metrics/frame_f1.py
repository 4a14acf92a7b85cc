"""F1 of binary frames per channel and horizon: how well imagined trajectories match real ones."""

import numpy as np


def channel_f1(predicted, real):
    """F1 = 2·TP/(predicted positives + real positives) of binary frames, per horizon step and channel.

    Counted over all trajectories and pixels at once; a (step, channel)
    with no positives in either is 1 (nothing to find, nothing invented).
    Per channel, so that a large static channel (Breakout's bricks) does
    not hide a small moving one (the ball), as pixel F1 over all channels
    does; average the channels with equal weight for one number.

    Args:
        predicted: imagined frames (n, T, H, W, C), binary (any dtype, nonzero is on).
        real: real frames of the same shape.

    Returns:
        float64 array (T, C).

    Example:
    >>> real = np.zeros((1, 2, 2, 2, 1)); real[0, :, 0, 0, 0] = 1
    >>> channel_f1(real, real)[:, 0]
    array([1., 1.])

    Reference: Alonso et al., "Diffusion for World Modeling", 2024 (rollout
    quality against the real environment under the same actions).
    """
    predicted, real = np.asarray(predicted).astype(bool), np.asarray(real).astype(bool)
    if predicted.shape != real.shape or predicted.ndim != 5:
        raise ValueError(
            f"`predicted` and `real` must be frames (n, T, H, W, C) of one shape; "
            f"received {predicted.shape} and {real.shape}."
        )
    true_positives = np.sum(predicted & real, axis=(0, 2, 3))
    total = np.sum(predicted, axis=(0, 2, 3)) + np.sum(real, axis=(0, 2, 3))
    return np.where(total > 0, 2 * true_positives / np.maximum(total, 1), 1.0)
