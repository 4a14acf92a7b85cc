"""Total variation between the laws of imagined and real frames: how well a simulator samples its branches."""

import numpy as np


def frame_total_variation(predicted, real):
    """Total variation distance between the empirical laws of imagined and real frames, per start and step.

    From each of n starting states, m imagined and m' real trajectories
    under the same actions; at every step t the two sets of frames are two
    samples of a law over whole frames, and their distance is
    ½ Σ_frame |p̂(frame) − q̂(frame)|, which is 0 when the sets hold the same
    frames at the same rates and 1 when they share none. A frame counts
    only when every pixel matches. Slice the channels to measure one
    (`frames[..., [c]]`).

    F1 against one real trajectory rewards the most probable next frame;
    this rewards sampling every branch at its rate. Two finite samples of
    one law are not at distance 0: compare with two independent real sets.

    Args:
        predicted: imagined frames (n, m, T, H, W, C), binary (nonzero is on).
        real: real frames (n, m', T, H, W, C) from the same n starts.

    Returns:
        float64 array (n, T), in [0, 1].

    Example:
    >>> on, off = np.ones((1, 1, 1, 1, 1, 1)), np.zeros((1, 1, 1, 1, 1, 1))
    >>> frame_total_variation(np.concatenate([on, off], axis=1), np.concatenate([on, on], axis=1))
    array([[0.5]])

    Reference: Alonso et al., "Diffusion for World Modeling", 2024 (a world
    model as a simulator of the environment's stochastic transitions).
    """
    predicted, real = np.asarray(predicted).astype(bool), np.asarray(real).astype(bool)
    shapes = [np.delete(a.shape, 1).tolist() if a.ndim == 6 else None for a in (predicted, real)]
    if shapes[0] is None or shapes[0] != shapes[1]:
        raise ValueError(
            "`predicted` and `real` must be trajectory sets (n, m, T, H, W, C) that differ in m at most; "
            f"received {predicted.shape} and {real.shape}."
        )
    n, m, steps = predicted.shape[:3]
    distance = np.empty((n, steps))
    for i in range(n):
        for t in range(steps):
            frames = np.concatenate([predicted[i, :, t], real[i, :, t]]).reshape(m + real.shape[1], -1)
            _, index = np.unique(frames, axis=0, return_inverse=True)
            index = index.reshape(-1)
            p = np.bincount(index[:m], minlength=index.max() + 1) / m
            q = np.bincount(index[m:], minlength=index.max() + 1) / real.shape[1]
            distance[i, t] = 0.5 * np.abs(p - q).sum()
    return distance
