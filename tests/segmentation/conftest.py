"""Segmentation tests run on one torch thread: these small convolutions are fastest that way, and two threads
contend badly on a busy 2-core machine (measured 15x slower per training step under load)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
