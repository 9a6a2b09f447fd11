"""Datasets (folder, zip, demo, torchvision), safe image input and content manifests."""
from core.data.base import ImageDataset, SkippedFile
from core.data.imageio import BadImageError, open_image, probe_image
from core.data.registry import list_datasets, open_dataset

__all__ = ["BadImageError", "ImageDataset", "SkippedFile", "list_datasets", "open_dataset", "open_image",
           "probe_image"]
