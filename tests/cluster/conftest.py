"""Shared fixtures of the clusterer tests."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks: one thread avoids paying for thread hand-offs on a busy machine."""
    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(before)
