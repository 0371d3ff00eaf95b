"""Feature extraction: per-voxel feature stacks and per-region descriptors.

[`context`][medseg.features.context] holds the `FEATURES` registry (each entry a filter
with its halo) and the per-channel `FeatureContext`; [`filters`][medseg.features.filters]
registers the built-in filters; [`config`][medseg.features.config] says what a stack holds
(`FeatureConfig`); `stack` computes stacks block-wise;
`regions` measures labelled objects.

>>> from medseg.features import FEATURES, FeatureConfig, feature_stack
>>> "hessian" in FEATURES.names()
True
"""
from medseg.features import filters  # noqa: F401 - registers the built-in filters in FEATURES
from medseg.features.config import (
    DEFAULT_FEATURES,
    FOREST_FEATURES,
    FeatureConfig,
    default_sigmas,
    feature_names,
    normalise_channels,
)
from medseg.features.context import FEATURES, Feature, FeatureContext, register_feature
from medseg.features.regions import region_table, write_region_csv
from medseg.features.stack import (
    feature_blocks,
    feature_rows,
    feature_stack,
    iter_feature_blocks,
    iter_feature_rows,
    sample_features,
)

__all__ = [
    "DEFAULT_FEATURES",
    "FOREST_FEATURES",
    "FEATURES",
    "Feature",
    "FeatureConfig",
    "FeatureContext",
    "default_sigmas",
    "feature_blocks",
    "feature_names",
    "feature_rows",
    "feature_stack",
    "iter_feature_blocks",
    "iter_feature_rows",
    "normalise_channels",
    "region_table",
    "register_feature",
    "sample_features",
    "write_region_csv",
]
