"""Data: sources that load MNIST-family images as numpy, and ``tf.data`` pipelines."""

from tfclust.data.idx import read_idx
from tfclust.data.images import ImageInfo, ImageSet, image_dataset, load_images
from tfclust.data.pipeline import autoencoder_pipeline, check_images, images_pipeline
from tfclust.data.sources import (
    DATASETS,
    SPLITS,
    DataUnavailableError,
    LoadedDataset,
    load_dataset,
)

__all__ = [
    "DATASETS",
    "SPLITS",
    "DataUnavailableError",
    "ImageInfo",
    "ImageSet",
    "LoadedDataset",
    "autoencoder_pipeline",
    "check_images",
    "image_dataset",
    "images_pipeline",
    "load_dataset",
    "load_images",
    "read_idx",
]
