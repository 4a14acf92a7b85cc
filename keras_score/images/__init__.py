"""Images: `ImageModel` (pixel levels in, uint8 images out), data pipelines, grids and PNG files."""

from keras_score.images.data import check_images, load_image_folder, load_npz, training_dataset
from keras_score.images.grid import image_grid, save_png, save_pngs
from keras_score.images.model import ImageModel

__all__ = [
    "ImageModel",
    "check_images",
    "training_dataset",
    "load_image_folder",
    "load_npz",
    "image_grid",
    "save_png",
    "save_pngs",
]
