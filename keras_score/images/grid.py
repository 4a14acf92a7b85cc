"""Image grids and PNG files of samples."""

import math
import os

import numpy as np


def image_grid(images, columns=None, padding=1):
    """Tiles images into one grid image, row by row, with `padding` pixels of black between them.

    Args:
        images: uint8 array (n, H, W, C) or (n, H, W).
        columns: images per row (default ⌈√n⌉).
        padding: pixels between neighbours.

    Returns:
        uint8 array (rows·(H + p) − p, columns·(W + p) − p, C).

    Example:
    >>> image_grid(np.zeros((6, 8, 8, 1), "uint8"), columns=3).shape
    (17, 26, 1)
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"`images` must have shape (n, H, W, C) with n ≥ 1; received shape {images.shape}.")
    n, height, width, channels = images.shape
    columns = math.ceil(math.sqrt(n)) if columns is None else max(1, min(int(columns), n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * (height + padding) - padding, columns * (width + padding) - padding, channels), images.dtype)
    for i, image in enumerate(images):
        top, left = (i // columns) * (height + padding), (i % columns) * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def save_png(path, image, scale=1):
    """Writes one uint8 image (H, W, C) with C ∈ {1, 3, 4} (or (H, W)) as PNG, enlarged `scale` times."""
    from PIL import Image

    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    picture = Image.fromarray(image)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    picture.save(path, format="PNG")


def save_pngs(folder, images, prefix="sample", start=0):
    """Writes images (n, H, W, C) as `folder/{prefix}-{i:06d}.png` for i = start, start + 1, …; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, image in enumerate(np.asarray(images), start=start):
        path = os.path.join(folder, f"{prefix}-{i:06d}.png")
        save_png(path, image)
        paths.append(path)
    return paths
