"""Classical segmentation algorithms (thresholds, edges, region growing, watershed,
active contours, clustering, random walker, vesselness) and shared post-processing.

Each algorithm is a :class:`~medseg.classical.base.ClassicalSegmenter`; they are
registered as methods by :mod:`medseg.methods.classical`.
"""
from medseg.classical.base import ClassicalParams, ClassicalSegmenter
from medseg.classical.clustering import GMM, KMeans, RandomWalker
from medseg.classical.contours import ChanVese, GeodesicActiveContour
from medseg.classical.edges import Edges
from medseg.postprocess import PostParams
from medseg.classical.region import RegionGrowing, Watershed
from medseg.classical.thresholding import Li, Local, MultiOtsu, Otsu, Triangle
from medseg.classical.vessels import Vesselness, fov_mask, vesselness

#: Every classical method class, in the order `medseg methods` lists them.
CLASSICAL_METHODS = (Otsu, MultiOtsu, Li, Triangle, Local, Edges, RegionGrowing, Watershed, ChanVese,
                     GeodesicActiveContour, KMeans, GMM, RandomWalker, Vesselness)

__all__ = [
    "CLASSICAL_METHODS", "GMM", "ChanVese", "ClassicalParams", "ClassicalSegmenter", "Edges",
    "GeodesicActiveContour", "KMeans", "Li", "Local", "MultiOtsu", "Otsu", "PostParams",
    "RandomWalker", "RegionGrowing", "Triangle", "Vesselness", "Watershed", "fov_mask",
    "vesselness",
]
