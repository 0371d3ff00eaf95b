"""Feature extraction: per-voxel feature stacks and per-region descriptors.

>>> from medseg.features import FEATURES, FeatureConfig, feature_stack
>>> "hessian" in FEATURES.names()
True
"""
from medseg.features.filters import FEATURES, FeatureContext, register_feature
from medseg.features.regions import region_table, write_region_csv
from medseg.features.stack import (
                                   DEFAULT_FEATURES,
                                   FeatureConfig,
                                   default_sigmas,
                                   feature_names,
                                   feature_stack,
                                   iter_feature_blocks,
                                   normalise_channels,
                                   sample_features,
)

__all__ = [
                                   "DEFAULT_FEATURES",
                                   "FEATURES",
                                   "FeatureConfig",
                                   "FeatureContext",
                                   "default_sigmas",
                                   "feature_names",
                                   "feature_stack",
                                   "iter_feature_blocks",
                                   "normalise_channels",
                                   "region_table",
                                   "register_feature",
                                   "sample_features",
                                   "write_region_csv",
]
