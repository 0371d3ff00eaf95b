"""Classical segmentation algorithms: thresholds, edges, region growing, watershed, active
contours, clustering, random walker, vesselness and T1 brain extraction.

Each algorithm is a [`ClassicalSegmenter`][medseg.classical.base.ClassicalSegmenter] (its parameters
include every post-processing flag of [`PostParams`][medseg.postprocess.PostParams]);
`CLASSICAL_METHODS` lists them and `medseg.methods.classical` registers them.
"""
from medseg.classical.base import ClassicalParams, ClassicalSegmenter
from medseg.classical.clustering import GMM, KMeans, RandomWalker
from medseg.classical.contours import ChanVese, GeodesicActiveContour
from medseg.classical.edges import Edges
from medseg.classical.region import RegionGrowing, Watershed
from medseg.classical.skullstrip import SkullStrip
from medseg.classical.thresholding import Li, Local, MultiOtsu, Otsu, Threshold, ThresholdParams, Triangle
from medseg.classical.vessels import Vesselness, fov_mask, vesselness

CLASSICAL_METHODS = (Threshold, Otsu, MultiOtsu, Li, Triangle, Local, Edges, RegionGrowing, Watershed, ChanVese,
                     GeodesicActiveContour, KMeans, GMM, RandomWalker, Vesselness, SkullStrip)
"""Every classical method class, in the order `medseg methods` lists them."""

__all__ = [
    "CLASSICAL_METHODS", "GMM", "ChanVese", "ClassicalParams", "ClassicalSegmenter", "Edges",
    "GeodesicActiveContour", "KMeans", "Li", "Local", "MultiOtsu", "Otsu", "RandomWalker", "RegionGrowing",
    "SkullStrip", "Threshold", "ThresholdParams", "Triangle", "Vesselness", "Watershed", "fov_mask", "vesselness",
]
