"""Tests for images: PixelScaling, ImageModel on arrays, TFDS and image folders, EMA sampling, bits/dim, grids and PNGs."""

import math
import os

import keras
import numpy as np
import pytest
from scipy import stats

import keras_score
from keras_score.datasets import load_digits
from keras_score.images import ImageModel, image_grid, load_image_folder, load_npz, save_png, save_pngs
from keras_score.networks import UNet
from keras_score.normalization import PixelScaling

from conftest import to_numpy


def tiny_unet():
    return UNet(channels=8, channel_multipliers=(1, 2), blocks_per_level=1, groups=4, embedding_dim=8)


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits(return_labels=True, pixel_values=True)
    return images[:128], labels[:128]


@pytest.fixture(scope="module")
def trained(digits):
    images, labels = digits
    model = ImageModel(tiny_unet(), levels=17, num_classes=10, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(images, labels, batch_size=32, epochs=2, verbose=0)
    return model


def test_pixel_scaling_maps_the_levels_onto_minus_one_to_one_and_back():
    layer = PixelScaling(17)
    pixels = np.arange(17, dtype="uint8").reshape(1, 17)
    z = to_numpy(layer(pixels))
    np.testing.assert_allclose(z, np.linspace(-1.0, 1.0, 17)[None], atol=1e-6)
    np.testing.assert_allclose(to_numpy(layer.inverse(keras.ops.convert_to_tensor(z, "float32"))), pixels, atol=1e-5)
    levels = layer.to_levels(np.array([-3.0, 0.49, 0.51, 15.5, 40.0]))
    assert levels.dtype == np.uint8 and levels.tolist() == [0, 0, 1, 16, 16]
    assert PixelScaling(1024).to_levels(np.array([1000.2])).dtype == np.int32
    assert layer.log_abs_det_jacobian((8, 8, 1)) == pytest.approx(64 * math.log(2 / 16))
    assert PixelScaling.from_config(layer.get_config()).levels == 17
    with pytest.raises(ValueError, match="`levels` must be an integer ≥ 2"):
        PixelScaling(1)


@pytest.mark.parametrize(
    "images, match",
    [
        (np.full((2, 8, 8, 1), 17.0), r"pixel values in \[0, 16\] \(levels=17\); received values in \[17, 17\]"),
        (np.linspace(-1, 1, 128).reshape(2, 8, 8, 1), r"for images scaled to \[−1, 1\], give \(x \+ 1\)·8\)"),
        (np.zeros((2, 8)), r"shape \(n, H, W, C\) or \(n, H, W\); received shape \(2, 8\)"),
        (np.full((2, 8, 8, 1), np.nan), "NaN or Inf"),
        (np.linspace(0, 1, 128).reshape(2, 8, 8, 1), r"looks scaled to \[0, 1\] .* give x·16"),
    ],
)
def test_fit_refuses_images_outside_the_levels_with_a_clear_error(images, match):
    model = ImageModel(tiny_unet(), levels=17)
    with pytest.raises(ValueError, match=match):
        model.fit(images, epochs=1, verbose=0)
    assert not model.built  # the failed call left the model as it was


def test_fit_on_arrays_learns_and_generate_returns_images_on_the_levels(trained, digits):
    images, labels = digits
    assert trained.data_shape == (8, 8, 1) and trained.levels == 17
    samples = trained.generate(6, labels=np.arange(6), guidance_scale=1.0, sampler="euler", steps=4, seed=0)
    assert samples.shape == (6, 8, 8, 1) and samples.dtype == np.uint8 and samples.max() <= 16
    floats = trained.generate(6, labels=np.arange(6), sampler="euler", steps=4, seed=0, quantize=False)
    assert floats.dtype == np.float32 and not np.all(floats == np.round(floats))
    np.testing.assert_array_equal(trained.normalizer.to_levels(floats), trained.generate(6, labels=np.arange(6), sampler="euler", steps=4, seed=0))
    # (n, H, W) images get their channel axis.
    model = ImageModel(tiny_unet(), levels=17)
    model.compile(optimizer="adam")
    model.fit(images[:32, ..., 0], epochs=1, verbose=0)
    assert model.data_shape == (8, 8, 1)


def test_sampling_uses_the_ema_weights(trained):
    assert isinstance(trained.ema, keras_score.ema.PowerFunctionEMA)
    kwargs = dict(labels=np.arange(4), sampler="euler", steps=3, seed=1, quantize=False)
    averaged, raw = trained.generate(4, **kwargs), trained.generate(4, use_ema=False, **kwargs)
    assert np.abs(averaged - raw).max() > 1e-3
    copy = ImageModel(tiny_unet(), levels=17, num_classes=10, ema=None)
    copy.build((None, 8, 8, 1))
    copy.denoiser.set_weights(trained.denoiser.get_weights())
    for weight, average in zip(copy.denoiser.trainable_variables, trained.ema_weights):
        weight.assign(average.value)
    np.testing.assert_allclose(copy.generate(4, **kwargs), averaged, atol=1e-4)


def test_keras_file_round_trip_keeps_levels_weights_and_samples(trained, tmp_path):
    path = str(tmp_path / "digits.keras")
    trained.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is ImageModel and loaded.levels == 17 and loaded.get_config()["levels"] == 17
    assert "normalize" not in loaded.get_config()
    kwargs = dict(labels=np.arange(4), sampler="heun", steps=3, seed=2)
    np.testing.assert_array_equal(loaded.generate(4, **kwargs), trained.generate(4, **kwargs))


def test_bits_per_dim_of_the_untrained_model_is_its_exact_gaussian_bound():
    # An untrained UNet outputs 0, so the EDM denoiser is c_skip·x: the exact posterior mean of data
    # z ~ N(0, σ_data²·I) (σ_data = 0.5). The probability-flow density at σ_min is then N(0, (σ_data² + σ_min²)·I) in
    # [−1, 1] units, and the bound in pixel units adds D·log(2/(L − 1)).
    model = ImageModel(tiny_unet(), levels=17, ema=None)
    model.build((None, 8, 8, 1))
    images = load_digits(pixel_values=True)[:3]
    bpd = model.bits_per_dim(images, seed=0, rtol=1e-5, atol=1e-5, divergence="exact")
    dequantized = keras_score.likelihood.dequantize(images, 17, data_range=(-0.5, 16.5), seed=0).astype(np.float64)
    z = dequantized * 2 / 16 - 1
    sigma_min = float(to_numpy(model.schedule.sigma(model.schedule.t_min)))
    variance = model.parameterization.sigma_data**2 + sigma_min**2
    log_p = stats.norm.logpdf(z, scale=math.sqrt(variance)).reshape(3, -1).sum(1) + 64 * math.log(2 / 16)
    np.testing.assert_allclose(bpd, -log_p / (64 * math.log(2)), rtol=1e-4)  # measured 1e-5


def test_fit_on_a_tfds_dataset_of_image_label_dicts():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
        dicts = tfds.load("fashion_mnist", split="train")  # {"image": uint8 (28, 28, 1), "label": int64}, unbatched
        supervised = tfds.load("fashion_mnist", split="train", as_supervised=True).batch(8)
    model = ImageModel(UNet(channels=4, channel_multipliers=(1,), blocks_per_level=1, groups=2, embedding_dim=4), num_classes=10, seed=0)
    model.compile(optimizer="adam")
    history = model.fit(dicts, batch_size=8, epochs=1, verbose=0)
    assert model.data_shape == (28, 28, 1) and np.isfinite(history.history["loss"][0])
    assert np.isfinite(model.fit(supervised, epochs=1, verbose=0).history["loss"][0])
    unconditional = ImageModel(UNet(channels=4, channel_multipliers=(1,), blocks_per_level=1, groups=2, embedding_dim=4))
    unconditional.compile(optimizer="adam")
    unconditional.fit(supervised, epochs=1, verbose=0)  # the labels are dropped
    assert unconditional.generate(2, steps=2, seed=0).shape == (2, 28, 28, 1)


def test_dataset_errors_name_what_was_expected():
    tf = pytest.importorskip("tensorflow")
    model = ImageModel(tiny_unet(), num_classes=3)
    with pytest.raises(ValueError, match="under 'image'"):
        model.fit(tf.data.Dataset.from_tensor_slices({"pixels": np.zeros((4, 8, 8, 1), "uint8")}), verbose=0)
    with pytest.raises(ValueError, match="needs labels"):
        model.fit(tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 1), "uint8")), verbose=0)


def test_image_folder_with_class_subfolders(tmp_path, digits):
    images, labels = digits
    for index in range(12):
        folder = tmp_path / f"class_{labels[index] % 2}"
        folder.mkdir(exist_ok=True)
        save_png(str(folder / f"{index}.png"), images[index])
    loaded, loaded_labels, names = load_image_folder(str(tmp_path))
    assert names == ["class_0", "class_1"] and loaded.shape == (12, 8, 8, 1) and loaded.dtype == np.uint8
    order = [int(n[:-4]) for c in names for n in sorted(os.listdir(tmp_path / c))]
    np.testing.assert_array_equal(loaded, images[order])
    np.testing.assert_array_equal(loaded_labels, labels[order] % 2)
    # The same folder through Keras' image_dataset_from_directory, into fit.
    pytest.importorskip("tensorflow")
    dataset = keras.utils.image_dataset_from_directory(
        str(tmp_path), color_mode="grayscale", image_size=(8, 8), batch_size=4, verbose=False
    )
    model = ImageModel(tiny_unet(), levels=256, num_classes=2, seed=0)
    model.compile(optimizer="adam")
    assert np.isfinite(model.fit(dataset, epochs=1, verbose=0).history["loss"][0])


def test_image_folder_and_npz_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="holds no images"):
        load_image_folder(str(tmp_path))
    save_png(str(tmp_path / "a.png"), np.zeros((8, 8, 1), "uint8"))
    save_png(str(tmp_path / "b.png"), np.zeros((4, 8, 1), "uint8"))
    with pytest.raises(ValueError, match="different sizes"):
        load_image_folder(str(tmp_path))
    assert load_image_folder(str(tmp_path), image_size=(4, 4))[0].shape == (2, 4, 4, 1)
    np.savez(tmp_path / "d.npz", images=np.ones((3, 8, 8), "uint8"), labels=np.arange(3))
    images, labels = load_npz(str(tmp_path / "d.npz"))
    assert images.shape == (3, 8, 8) and labels.tolist() == [0, 1, 2]
    np.savez(tmp_path / "e.npz", a=np.ones(2), b=np.ones(2))
    with pytest.raises(ValueError, match="'images' or 'x'"):
        load_npz(str(tmp_path / "e.npz"))


def test_image_grid_and_png_files_hold_the_images(tmp_path):
    images = np.arange(5 * 2 * 3 * 1, dtype="uint8").reshape(5, 2, 3, 1)
    grid = image_grid(images, columns=3, padding=1)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1, 1)
    np.testing.assert_array_equal(grid[3:5, 4:7], images[4])
    assert grid[2].max() == 0 and grid[:, 3].max() == 0  # the padding
    save_png(str(tmp_path / "grid.png"), grid, scale=2)
    from PIL import Image

    with Image.open(tmp_path / "grid.png") as picture:
        assert picture.size == (2 * grid.shape[1], 2 * grid.shape[0])
        np.testing.assert_array_equal(np.asarray(picture)[::2, ::2], grid[..., 0])
    paths = save_pngs(str(tmp_path / "out"), np.repeat(images, 3, axis=-1), start=10)
    assert [os.path.basename(p) for p in paths[:2]] == ["sample-000010.png", "sample-000011.png"]
    np.testing.assert_array_equal(load_image_folder(str(tmp_path / "out"))[0], np.repeat(images, 3, axis=-1))
