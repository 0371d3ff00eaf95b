"""medseg: medical image segmentation, from a folder of scans to an evaluated segmentation.

Examples
--------
>>> import medseg
>>> from medseg.testing import disc_phantom
>>> image, truth = disc_phantom(seed=0)
>>> labels = medseg.segment(image, "threshold")
>>> labels.shape == image.shape
True
"""
from medseg._version import __version__
from medseg.errors import MedsegError
from medseg.image import Image
from medseg.io import load_dataset, read_image, read_label, write_image
from medseg.methods import METHODS, load_model, segment

__all__ = ["__version__", "Image", "MedsegError", "read_image", "read_label", "write_image", "load_dataset",
           "segment", "METHODS", "load_model"]
