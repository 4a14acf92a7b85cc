"""`ImageModel`: a score model of images in pixel units — arrays, TFDS and image-folder datasets in, uint8 images out."""

import keras
import numpy as np

from keras_score import likelihood, validation
from keras_score.images import data
from keras_score.model import ScoreModel
from keras_score.networks import UNet
from keras_score.normalization import PixelScaling
from keras_score.objectives import VariationalBound
from keras_score.parameterization import EDMPreconditioning

SIGMA_DATA = 0.5  # EDM's σ_data of images in [−1, 1]


@keras.saving.register_keras_serializable(package="keras_score")
class ImageModel(ScoreModel):
    """A `ScoreModel` of (H, W, C) images whose pixels take `levels` values, with a UNet by default.

    The model diffuses in [−1, 1]: `PixelScaling(levels)` maps pixel values
    0…L−1 (uint8 or floats) there and back, with nothing to fit, so a
    dataset is streamed once per epoch. `fit` takes numpy arrays (n, H, W[,
    C]) with labels as y for a class-conditional model, TFDS datasets
    (`tfds.load(...)`: dicts {"image", "label"}, batched here when they are
    not), and `keras.utils.image_dataset_from_directory` datasets.
    `generate` returns images on the data's levels (uint8 for L ≤ 256);
    `bits_per_dim` evaluates the discrete images' negative log-likelihood
    bound by uniform dequantization and the probability-flow ODE.

    Sampling uses an EMA of the weights: EDM2's power-function average
    (σ_rel = 0.10) unless `ema` is given, since it needs no training length.

    Args:
        network: the denoiser network (default `UNet()`).
        levels: the number of pixel levels L (256 for 8-bit images, 17 for
            scikit-learn's digits).
        parameterization: as `ScoreModel` (default EDM's preconditioning
            with σ_data = 0.5, EDM's value for images in [−1, 1]).
        ema: as `ScoreModel` (default "power"; None for no average).
        class_names: the names of the `num_classes` classes (e.g. the
            sub-folders of an image folder), or None.
        **kwargs: `ScoreModel` arguments (schedule, parameterization,
            objective — "vdm" is `VariationalBound(levels)` on these
            levels —, num_classes, p_uncond, seed, ...).

    Example:
    ```python
    import tensorflow_datasets as tfds
    model = keras_score.images.ImageModel(num_classes=10, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-4))
    model.fit(tfds.load("fashion_mnist", split="train").shuffle(10_000), epochs=10)
    images = model.generate(64, labels=np.arange(64) % 10, guidance_scale=2.0, sampler="heun", steps=18)
    keras_score.images.save_png("grid.png", keras_score.images.image_grid(images))
    ```

    Reference: Ho et al. 2020 (DDPM); Karras et al. 2022 (EDM); Karras et al. 2024 (EDM2, the average).
    """

    def __init__(self, network=None, levels=256, parameterization=None, ema="power", class_names=None, **kwargs):
        kwargs.pop("normalize", None)  # always the pixel scaling, from `levels`
        if kwargs.get("objective") == "vdm":  # VDM's bound on the image's own levels
            kwargs["objective"] = VariationalBound(levels=levels)
        super().__init__(
            UNet() if network is None else network,
            parameterization=EDMPreconditioning(sigma_data=SIGMA_DATA) if parameterization is None else parameterization,
            normalize=PixelScaling(levels),
            ema=ema,
            **kwargs,
        )
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"`class_names` must name the {self.num_classes} classes (num_classes); "
                f"received {len(self.class_names)} names."
            )

    @property
    def levels(self):
        """The number of pixel levels L."""
        return self.normalizer.levels

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """Trains on images in pixel units: arrays (with labels y), TFDS or image-folder datasets.

        Args:
            x: uint8 or float images (n, H, W) or (n, H, W, C) with values in
                [0, levels − 1]; or a `tf.data.Dataset` of TFDS dicts
                {"image", "label"} or of (images, labels) tuples, batched or
                not; or any input `ScoreModel.fit` takes.
            y: labels (n,) of a class-conditional model, for arrays.
            batch_size: examples per step (for arrays, and for an unbatched
                dataset; default 64).
            **kwargs: `keras.Model.fit` arguments (epochs, callbacks, ...).

        Returns:
            the Keras `History`.
        """
        labels_name = "labels" if "labels" in self.condition_spec else None
        if data._is_dataset(x):
            return super().fit(data.training_dataset(x, labels_name, batch_size), y, **kwargs)
        if hasattr(x, "shape") or isinstance(x, (list, tuple)):
            x = data.check_images(x, self.levels)
            batch_size = data.DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        elif isinstance(x, dict) and "x" in x:
            x = dict(x, x=data.check_images(x["x"], self.levels, "x['x']"))
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def generate_batches(self, num_samples, quantize=True, **kwargs):
        """`ScoreModel.generate_batches`; with `quantize`, each batch on the pixel levels (uint8 for L ≤ 256)."""
        batches = super().generate_batches(num_samples, **kwargs)
        if not quantize:
            return batches
        trajectory = kwargs.get("return_trajectory", False)
        quantized = self.normalizer.to_levels
        return ((quantized(b[0]), b[1]) if trajectory else quantized(b) for b in batches)

    def generate(self, num_samples, quantize=True, **kwargs):
        """Draws `num_samples` images (n, H, W, C): uint8 on the levels with `quantize`, else floats in pixel units.

        Args:
            num_samples: number of images.
            quantize: round and clip to 0…L−1 (default True).
            **kwargs: `ScoreModel.generate` arguments (sampler, steps, labels,
                guidance_scale, seed, batch_size, ...).

        Returns:
            numpy array of shape (num_samples, H, W, C), or
            `(images, trajectory)` with `return_trajectory`.
        """
        batches = self.generate_batches(num_samples, quantize=quantize, **kwargs)
        return ScoreModel.concatenate_batches(batches, kwargs.get("return_trajectory", False))

    def bits_per_dim(self, images, seed=0, **kwargs):
        """The negative log-likelihood bound of discrete images in bits per dimension, one per image.

        Each pixel value k owns the bin [k − ½, k + ½); uniform noise in it
        (seed `seed`) makes continuous data whose probability-flow density
        bounds the discrete probability from below (Theis et al. 2016):
        bpd = −log p(x + u − ½)/(D·ln 2), the density in pixel units.

        Args:
            images: integer images (n, H, W[, C]) with values 0…L−1.
            seed: seed of the dequantization noise.
            **kwargs: `ScoreModel.log_prob` options (solver, steps, divergence, probes, batch_size, use_ema, ...).

        Returns:
            float64 numpy array of shape (n,).

        Example:
        >>> float(model.bits_per_dim(test_images, steps=64).mean())

        Reference: Theis, van den Oord & Bethge 2016, "A note on the evaluation of generative models";
        Song et al. 2021, App. D.
        """
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        bins = (-0.5, self.levels - 0.5)
        dequantized = likelihood.dequantize(images, self.levels, data_range=bins, seed=validation.check_int(seed, "seed", 0))
        log_prob = self.log_prob(dequantized, **kwargs)
        if kwargs.get("return_details"):
            log_prob = log_prob[0]
        return likelihood.bits_per_dim(log_prob, int(np.prod(images.shape[1:])), self.levels, data_range=bins)

    def get_config(self):
        config = super().get_config()
        config.pop("normalize")
        config["levels"] = self.levels
        config["class_names"] = self.class_names
        return config
