import numpy as np
import pytest

from medseg.testing import shared_data


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def real_data():
    """Return a function giving a path under ../shared/data or skipping the test."""
    def get(*parts):
        p = shared_data(*parts)
        if p is None:
            pytest.skip(f"real data {'/'.join(parts)} not available")
        return p
    return get
