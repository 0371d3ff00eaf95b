import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")


@pytest.fixture(autouse=True, scope="session")
def _threads():
    """Keep the shared CPU calm and results reproducible."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
