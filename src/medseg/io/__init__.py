"""Reading and writing images and datasets.

``read_image``/``read_label``/``write_image`` choose the format by suffix;
``load_dataset`` opens any supported dataset layout; ``list_series``/``read_dicom``
give access to DICOM folders holding several series (``read_image(path, series=UID)``);
``input_kind`` says what an input path is (an image file, a DICOM series, a folder of
images, a scanner export, a dataset).

Each format module registers its reader/writer when imported; importing this package
imports them all, so every format is available whichever ``medseg.io`` module is used.
"""
from medseg.io import dicom, nifti, npy, pil, sitk  # noqa: F401 - each format registers itself on import
from medseg.io.base import image_suffix, is_image_file, read_image, strip_suffix, supported_suffixes, write_image
from medseg.io.datasets import Case, Dataset, list_images, load_dataset, pair_files
from medseg.io.dicom import list_series, read_dicom
from medseg.io.inputs import InputKind, input_kind, is_dataset
from medseg.io.labels import as_label, label_values, read_label
from medseg.io.listing import CHANNEL_SUFFIX

__all__ = ["read_image", "read_label", "write_image", "as_label", "label_values", "image_suffix", "strip_suffix",
           "supported_suffixes", "is_image_file", "load_dataset", "Dataset", "Case", "list_images",
           "pair_files", "list_series", "read_dicom", "input_kind", "InputKind", "is_dataset",
           "CHANNEL_SUFFIX"]
