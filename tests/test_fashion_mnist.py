"""Tests for the Fashion-MNIST loader: IDX parsing, the order of its sources, the offline message."""

import gzip
import os

import numpy as np
import pytest

from keras_score.datasets import fashion_mnist
from keras_score.datasets.fashion_mnist import load_fashion_mnist, read_idx


def _write_idx(path, array, magic, compress):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_folder(tmp_path):
    """A folder of the four IDX files with 5 train and 3 test images of known pixels (test files not gzipped)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count, compress in (("train", 5, True), ("test", 3, False)):
        images = rng.integers(0, 256, (count, 28, 28))
        labels = rng.integers(0, 10, count)
        names = fashion_mnist._FILES[split]
        suffix = ".gz" if compress else ""
        _write_idx(str(tmp_path / (names[0] + suffix)), images, 2051, compress)
        _write_idx(str(tmp_path / (names[1] + suffix)), labels, 2049, compress)
        arrays[split] = images, labels
    return tmp_path, arrays


def test_local_idx_files_are_read_and_scaled(idx_folder, monkeypatch):
    folder, arrays = idx_folder
    monkeypatch.setattr(fashion_mnist, "_from_keras", lambda split: pytest.fail("downloaded despite local files"))
    for split in ("train", "test"):
        images, labels = load_fashion_mnist(split, path=str(folder), return_labels=True)
        expected_images, expected_labels = arrays[split]
        assert images.shape == (len(expected_labels), 28, 28, 1) and images.dtype == np.float32
        np.testing.assert_array_equal(np.round((images[..., 0] + 1.0) / 2.0 * 255.0), expected_images)
        np.testing.assert_array_equal(labels, expected_labels)
    monkeypatch.setenv(fashion_mnist.ENVIRONMENT_VARIABLE, str(folder))
    assert load_fashion_mnist("test").shape == (3, 28, 28, 1)  # the environment variable's folder


def test_keras_download_is_used_without_local_files(tmp_path, monkeypatch):
    images = np.full((2, 28, 28), 255, np.uint8)
    calls = []

    def load_data():
        calls.append(True)
        return (images, np.array([3, 4])), (images[:1], np.array([7]))

    import keras

    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", str(tmp_path / "absent"))
    monkeypatch.delenv(fashion_mnist.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", load_data)
    test_images, test_labels = load_fashion_mnist("test", return_labels=True)
    assert calls and test_images.shape == (1, 28, 28, 1) and np.all(test_images == 1.0) and test_labels.tolist() == [7]


def test_offline_without_files_names_both_ways(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("name resolution failed")

    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", str(tmp_path / "absent"))
    monkeypatch.delenv(fashion_mnist.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(RuntimeError, match="apt-get install dataset-fashion-mnist") as error:
        load_fashion_mnist()
    assert "go online" in str(error.value) and "name resolution failed" in str(error.value)


def test_bad_arguments_and_files(tmp_path, idx_folder):
    with pytest.raises(ValueError, match="`split` must be 'train' or 'test'"):
        load_fashion_mnist("validation")
    with pytest.raises(FileNotFoundError, match="`path`"):
        load_fashion_mnist(path=str(tmp_path / "nothing"))
    bad = tmp_path / "bad"
    bad.write_bytes((1234).to_bytes(4, "big") + b"\0" * 8)
    with pytest.raises(ValueError, match="magic number 1234"):
        read_idx(str(bad))
    folder, _ = idx_folder
    truncated = tmp_path / "truncated"
    truncated.write_bytes(gzip.open(folder / "train-images-idx3-ubyte.gz").read()[:-10])
    with pytest.raises(ValueError, match="header announces shape"):
        read_idx(str(truncated))


@pytest.mark.skipif(not os.path.isdir(fashion_mnist.DEBIAN_FOLDER), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_files_hold_the_release():
    images, labels = load_fashion_mnist("test", return_labels=True)
    assert images.shape == (10000, 28, 28, 1) and labels[:3].tolist() == [9, 2, 1]
    assert np.bincount(labels).tolist() == [1000] * 10
