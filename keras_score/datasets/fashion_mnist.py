"""Fashion-MNIST: 70,000 grayscale 28 × 28 images of clothing in 10 classes, from local IDX files or Keras.

Where the data comes from, in this order:
1. the folder `path` if given, else the folder named by the environment
   variable `KERAS_SCORE_FASHION_MNIST`, else Debian's
   `/usr/share/datasets/fashion-mnist` (`apt-get install dataset-fashion-mnist`):
   the four IDX files of the original release (`train-images-idx3-ubyte.gz`,
   …, gzipped or not);
2. otherwise `keras.datasets.fashion_mnist.load_data()`, which reads Keras'
   cache (`~/.keras/datasets`) or downloads the release once.
Local files come first, so no download is tried when they are there; when
neither way works, the error names both.

Reference: Xiao, Rasul & Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", 2017.
"""

import gzip
import os

import numpy as np

DEBIAN_FOLDER = "/usr/share/datasets/fashion-mnist"
ENVIRONMENT_VARIABLE = "KERAS_SCORE_FASHION_MNIST"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_MAGIC = {2051: 3, 2049: 1}  # IDX magic numbers of unsigned-byte images (3 dimensions) and labels (1)


def read_idx(path):
    """An unsigned-byte IDX file (gzipped or not) as a numpy uint8 array of its shape.

    Args:
        path: the file.

    Returns:
        uint8 array, e.g. (60000, 28, 28) for images, (60000,) for labels.

    Example:
    >>> read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape
    (10000,)
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as file:
        content = file.read()
    magic = int.from_bytes(content[:4], "big")
    if magic not in _MAGIC:
        raise ValueError(f"{path} is not an unsigned-byte IDX file of images or labels (magic number {magic}).")
    rank = _MAGIC[magic]
    shape = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    data = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * rank)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} values where its header announces shape {shape}.")
    return data.reshape(shape)


def _local_files(folder, split):
    """The (images, labels) paths of `split` in `folder`, gzipped or not, or None if one is missing."""
    found = []
    for name in _FILES[split]:
        candidates = [os.path.join(folder, name + suffix) for suffix in (".gz", "")]
        existing = [candidate for candidate in candidates if os.path.isfile(candidate)]
        if not existing:
            return None
        found.append(existing[0])
    return found


def _from_keras(split):
    import keras

    (train_images, train_labels), (test_images, test_labels) = keras.datasets.fashion_mnist.load_data()
    return (train_images, train_labels) if split == "train" else (test_images, test_labels)


def load_fashion_mnist(split="train", path=None, return_labels=False):
    """Fashion-MNIST images scaled to [-1, 1], channels-last, from local IDX files or Keras' download.

    Pixels 0..255 are mapped to pixel / 255 · 2 − 1, as `load_digits` maps
    its 0..16. The module's docstring says where the files are looked for.

    Args:
        split: "train" (60,000 images) or "test" (10,000).
        path: a folder holding the IDX files; None looks in
            `$KERAS_SCORE_FASHION_MNIST`, then Debian's folder, then Keras.
        return_labels: also return the class (0..9, names in `CLASS_NAMES`).

    Returns:
        (n, 28, 28, 1) float32 array, and (n,) int64 labels if `return_labels`.

    Example:
    >>> images, labels = load_fashion_mnist("test", return_labels=True)
    >>> images.shape, labels[:3].tolist()
    ((10000, 28, 28, 1), [9, 2, 1])
    """
    if split not in _FILES:
        raise ValueError(f"`split` must be 'train' or 'test'; received {split!r}.")
    folders = [path] if path is not None else [os.environ.get(ENVIRONMENT_VARIABLE) or None, DEBIAN_FOLDER]
    for folder in filter(None, folders):
        files = _local_files(folder, split)
        if files is not None:
            images, labels = (read_idx(file) for file in files)
            break
    else:
        if path is not None:
            raise FileNotFoundError(f"`path` {path!r} lacks the Fashion-MNIST {split} files {list(_FILES[split])} (.gz or not).")
        try:
            images, labels = _from_keras(split)
        except Exception as error:  # offline, or a damaged cache: name both ways
            raise RuntimeError(
                "Fashion-MNIST is not on this machine and could not be downloaded "
                f"(keras.datasets.fashion_mnist: {type(error).__name__}: {error}). Either go online once "
                f"(Keras caches it in ~/.keras/datasets), or install the IDX files: `apt-get install "
                f"dataset-fashion-mnist` on Debian puts them in {DEBIAN_FOLDER}; any folder of them works "
                f"with `path=` or ${ENVIRONMENT_VARIABLE}."
            ) from error
    if len(images) != len(labels):
        raise ValueError(f"The Fashion-MNIST {split} files hold {len(images)} images but {len(labels)} labels.")
    scaled = (images.astype(np.float32) / 255.0 * 2.0 - 1.0)[..., None]
    return (scaled, labels.astype(np.int64)) if return_labels else scaled
