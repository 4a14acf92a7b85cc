"""Image training data for `ImageModel.fit`: arrays, TFDS datasets, image-folder datasets; folders and .npz files on disk."""

import os

import numpy as np

from keras_score import validation

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
DEFAULT_BATCH_SIZE = 64


def check_images(images, levels, name="x"):
    """Images as float32 (n, H, W, C) pixel values in [0, levels − 1]; (n, H, W) gets one channel.

    Args:
        images: array-like of shape (n, H, W) or (n, H, W, C), uint8 or numbers.
        levels: the number of pixel levels L.
        name: the argument's name for errors.

    Returns:
        numpy float32 array of shape (n, H, W, C).
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or 0 in array.shape:
        raise ValueError(f"`{name}` must be images of shape (n, H, W, C) or (n, H, W); received shape {array.shape}.")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must hold pixel values (numbers); received dtype {array.dtype}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` holds {int(np.sum(~np.isfinite(array)))} NaN or Inf values.")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > levels - 1:
        hint = f" (for images scaled to [−1, 1], give (x + 1)·{(levels - 1) / 2:g})" if low >= -1 and high <= 1 else ""
        raise ValueError(
            f"`{name}` must hold pixel values in [0, {levels - 1}] (levels={levels}); "
            f"received values in [{low:g}, {high:g}]{hint}."
        )
    if levels > 2 and high <= 1 and array.dtype.kind == "f" and np.any(array != np.round(array)):
        raise ValueError(
            f"`{name}` looks scaled to [0, 1] (fractional values, at most {high:g}); it must hold pixel values in "
            f"[0, {levels - 1}] (levels={levels}): give x·{levels - 1}."
        )
    return array.astype("float32")


def _is_dataset(x):
    return hasattr(x, "element_spec") and hasattr(x, "map") and hasattr(x, "batch")


def _image_spec(spec):
    """The image entry of a dataset's element spec: "image" of a TFDS dict, or the first of a tuple."""
    if isinstance(spec, dict):
        if "image" not in spec:
            raise ValueError(
                f"A dataset of dicts must hold the images under 'image' (as TFDS does); received keys {sorted(spec)}."
            )
        return spec["image"]
    return spec[0] if isinstance(spec, tuple) else spec


def training_dataset(dataset, labels_name=None, batch_size=None):
    """A `tf.data` dataset of images as `fit` takes it: {"x": images[, labels_name: labels]} batches.

    Takes TFDS datasets (dicts {"image": uint8 (H, W, C), "label": int}),
    `as_supervised` and `keras.utils.image_dataset_from_directory` datasets
    ((images, labels) tuples), or datasets of images alone. Unbatched
    datasets are batched by `batch_size`; the pixel values keep their dtype
    (uint8) and are scaled by the model's `PixelScaling`.

    Args:
        dataset: a `tf.data.Dataset`.
        labels_name: the model's label condition name, or None for an
            unconditional model (labels in the data are then dropped).
        batch_size: examples per batch of an unbatched dataset (default 64).

    Returns:
        the mapped `tf.data.Dataset`.
    """
    spec = dataset.element_spec
    image = _image_spec(spec)
    has_labels = isinstance(spec, tuple) and len(spec) > 1 or isinstance(spec, dict) and "label" in spec
    if labels_name is not None and not has_labels:
        raise ValueError("This class-conditional model needs labels: the dataset yields images alone.")
    if image.shape.rank not in (3, 4):
        raise ValueError(f"The dataset's images must have shape (H, W, C) or (batch, H, W, C); received {image.shape}.")

    def to_inputs(*element):
        element = element[0] if len(element) == 1 else element
        if isinstance(element, dict):
            images, labels = element["image"], element.get("label")
        elif isinstance(element, tuple):
            images, labels = element[0], element[1] if len(element) > 1 else None
        else:
            images, labels = element, None
        inputs = {"x": images}
        if labels_name is not None:
            inputs[labels_name] = labels
        return inputs

    if image.shape.rank == 3:
        dataset = dataset.batch(validation.check_int(batch_size or DEFAULT_BATCH_SIZE, "batch_size", 1))
    return dataset.map(to_inputs)


def load_image_folder(path, image_size=None, color_mode=None):
    """Reads a folder of PNG/JPEG images into a uint8 array; sub-folders are classes.

    Images directly in `path` make an unlabelled set; images in
    sub-folders get the index of their sub-folder (sorted by name) as label.

    Args:
        path: the folder.
        image_size: (H, W) to resize every image to, or None (all images must
            then share one size).
        color_mode: "grayscale", "rgb" or None (grayscale if every image is).

    Returns:
        `(images, labels, class_names)`: uint8 (n, H, W, C), int32 (n,) or
        None, and the sub-folder names (or None).

    Example:
    >>> images, labels, names = load_image_folder("digits/")   # digits/0/*.png, digits/1/*.png, ...
    """
    from PIL import Image

    if not os.path.isdir(path):
        raise ValueError(f"Image folder {path!r} does not exist.")
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    files, labels = [], []
    for label, folder in enumerate(classes or [None]):
        where = path if folder is None else os.path.join(path, folder)
        names = sorted(n for n in os.listdir(where) if n.lower().endswith(IMAGE_EXTENSIONS))
        files += [os.path.join(where, n) for n in names]
        labels += [label] * len(names)
    if not files:
        raise ValueError(f"Image folder {path!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}), neither in it nor in sub-folders.")
    pictures = []
    for file in files:
        try:
            with Image.open(file) as picture:
                picture.load()
                pictures.append(picture.copy())
        except OSError as error:
            raise ValueError(f"Cannot read image {file!r}: {error}") from None
    if color_mode is None:
        color_mode = "grayscale" if all(p.mode in ("L", "1", "I;16") for p in pictures) else "rgb"
    if color_mode not in ("grayscale", "rgb"):
        raise ValueError(f"`color_mode` must be 'grayscale', 'rgb' or None; received {color_mode!r}.")
    arrays = []
    for file, picture in zip(files, pictures):
        picture = picture.convert("L" if color_mode == "grayscale" else "RGB")
        if image_size is not None:
            picture = picture.resize((int(image_size[1]), int(image_size[0])), Image.BILINEAR)
        array = np.asarray(picture, dtype=np.uint8)
        arrays.append(array[..., None] if array.ndim == 2 else array)
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
        raise ValueError(f"The images in {path!r} have different sizes {sizes[:3]}…; give `image_size` to resize them.")
    return np.stack(arrays), (np.asarray(labels, dtype="int32") if classes else None), (classes or None)


def load_npz(path):
    """Reads images (and labels) from an .npz file: arrays "images" or "x" (n, H, W[, C]), and "labels" or "y".

    Returns:
        `(images, labels)`, labels None when the file has none.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path!r} as an .npz file: {error}") from None
    image_key = next((k for k in ("images", "x") if k in arrays), None)
    if image_key is None:
        if len(arrays) != 1:
            raise ValueError(f"{path!r} must hold the images as 'images' or 'x'; it holds {sorted(arrays)}.")
        image_key = next(iter(arrays))
    label_key = next((k for k in ("labels", "y") if k in arrays), None)
    return arrays[image_key], None if label_key is None else arrays[label_key]
