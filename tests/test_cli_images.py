"""Tests for the image side of `keras-score`: train on a folder or an .npz of images, sample a PNG grid or folder.

One tiny class-conditional UNet model (8 channels, one block, 2 steps) is
trained per module from a folder of 8x8 digit PNGs in sub-folders, and
sampled to a grid, to a folder, by class name and by index.
"""

import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_score.cli import main
from keras_score.datasets.real import load_digits
from keras_score.images import ImageModel

TINY = ["--steps", "2", "--batch-size", "16", "--hidden-units", "8", "--blocks", "1"]
CLASSES = ("one", "two", "zero")  # sorted, as the sub-folders are read


def _run_error(capsys, argv, *fragments):
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits(return_labels=True, pixel_values=True)
    return images[:48], labels[:48]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("folder")
    images, labels = digits
    for i, (image, label) in enumerate(zip(images, labels)):
        name = {0: "zero", 1: "one", 2: "two"}.get(int(label))
        if name is None:
            continue
        os.makedirs(root / name, exist_ok=True)
        Image.fromarray(image[..., 0] * 15).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, folder):
    out = tmp_path_factory.mktemp("model") / "digits.keras"
    assert main(["train", str(folder), "--out", str(out)] + TINY) == 0
    return out


def test_train_on_a_folder_saves_a_class_conditional_image_model(trained, folder, capsys):
    model = keras.models.load_model(trained)
    assert isinstance(model, ImageModel)
    assert model.class_names == list(CLASSES) and model.num_classes == 3
    assert model.levels == 256 and tuple(model.data_shape) == (8, 8, 1)
    assert model.denoiser.network.channels == 8 and model.denoiser.network.channel_multipliers == (1, 2)


def test_sample_a_grid_with_one_column_per_class(trained, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(trained), "-n", "6", "--out", str(out), "--steps", "2"]) == 0
    assert "wrote a grid of 6 samples" in capsys.readouterr().out
    with Image.open(out) as grid:
        # 3 columns (one per class), 2 rows of 8x8 images with 1 pixel between them, enlarged 4x to 32 pixels
        assert grid.size == (4 * (3 * 9 - 1), 4 * (2 * 9 - 1)) and grid.mode == "L"


def test_sample_a_folder_of_pngs_by_class_name_and_index(trained, tmp_path, capsys):
    out = tmp_path / "samples"
    argv = ["sample", str(trained), "-n", "5", "--out", f"{out}/", "--steps", "2", "--labels", "zero,1"]
    assert main(argv + ["--guidance-scale", "2"]) == 0
    names = sorted(os.listdir(out))
    assert names == [f"sample-{i:06d}.png" for i in range(5)]
    with Image.open(out / names[0]) as image:
        assert image.size == (8, 8) and image.mode == "L"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".keras-score")]  # the staging folder is gone
    _run_error(capsys, argv, "--out", "not empty", "--overwrite")
    assert main(argv + ["--overwrite", "--seed", "1"]) == 0


def test_the_grid_is_seeded(trained, tmp_path):
    paths = [tmp_path / f"{k}.png" for k in range(2)]
    for path in paths:
        assert main(["sample", str(trained), "-n", "3", "--out", str(path), "--steps", "2", "--seed", "5"]) == 0
    with Image.open(paths[0]) as a, Image.open(paths[1]) as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_train_on_an_npz_with_levels(digits, tmp_path, capsys):
    images, labels = digits
    data = tmp_path / "digits.npz"
    np.savez(data, images=images[..., 0], labels=labels)
    out = tmp_path / "m.keras"
    assert main(["train", str(data), "--out", str(out), "--levels", "17"] + TINY) == 0
    assert "48 images of 8x8x1, 17 levels (10 classes" in capsys.readouterr().out
    model = keras.models.load_model(out)
    assert model.levels == 17 and model.num_classes == 10
    grid = tmp_path / "g.png"
    assert main(["sample", str(out), "-n", "2", "--out", str(grid), "--steps", "2", "--labels", "9"]) == 0


def test_image_errors_are_one_line(trained, folder, digits, tmp_path, capsys):
    images, _ = digits
    over = tmp_path / "over.npz"
    np.savez(over, images=images[..., 0])
    _run_error(capsys, ["train", str(over), "--out", str(tmp_path / "a.keras"), "--levels", "4"] + TINY, "[0, 3]")
    _run_error(capsys, ["train", str(folder), "--out", str(tmp_path / "a.keras"), "--image-size", "8"], "--image-size", "HxW")
    _run_error(capsys, ["train", str(folder), "--out", str(tmp_path / "a.keras"), "--levels", "1"], "--levels", "≥ 2")
    _run_error(
        capsys,
        ["train", str(folder), "--out", str(tmp_path / "a.keras"), "--channel-multipliers", "1,2,2,2,2"] + TINY,
        "divisible by 16",
    )
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    _run_error(capsys, ["train", str(table), "--out", str(tmp_path / "a.keras"), "--levels", "17"], "--levels", "table")
    sample = ["sample", str(trained), "-n", "2", "--steps", "2"]
    _run_error(capsys, sample + ["--out", str(tmp_path / "s.csv")], "samples images", ".png grid or a folder")
    _run_error(capsys, sample + ["--out", str(tmp_path / "g.png"), "--labels", "five"], "--labels", "'five'", "one, two, zero")
    _run_error(capsys, sample + ["--out", str(tmp_path / "g.png"), "--where", "a=1"], "--where", "--labels")
    _run_error(capsys, ["evaluate", str(trained), str(over)], "models images")
    assert not (tmp_path / "a.keras").exists() and not (tmp_path / "g.png").exists()
