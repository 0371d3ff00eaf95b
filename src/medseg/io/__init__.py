"""Reading and writing images and datasets.

``read_image``/``read_label``/``write_image`` choose the format by suffix;
``load_dataset`` opens any supported dataset layout; ``list_series``/``read_dicom``
give access to DICOM folders holding several series (``read_image(path, series=UID)``).
"""
from medseg.io.base import (as_label, image_suffix, is_image_file, read_image, read_label,
                            strip_suffix, supported_suffixes, write_image)
from medseg.io.datasets import Case, Dataset, list_images, load_dataset, pair_files
from medseg.io.dicom import list_series, read_dicom

__all__ = ["read_image", "read_label", "write_image", "as_label", "image_suffix", "strip_suffix",
           "supported_suffixes", "is_image_file", "load_dataset", "Dataset", "Case", "list_images",
           "pair_files", "list_series", "read_dicom"]
