"""Depth tests run their tiny networks on one thread: on a shared 2-core machine two OpenMP threads mostly wait."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
