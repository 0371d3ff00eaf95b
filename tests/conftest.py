import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.testing import shared_data

# shared test helpers (contract_settings) importable under --import-mode=importlib
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


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
