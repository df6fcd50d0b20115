"""Shared test set-up: deterministic seeds, registered modules, the repository's asset folder."""
from pathlib import Path

import numpy as np
import pytest
import torch

import data  # noqa: F401  (registers datasets, transforms, metrics)
import tasks  # noqa: F401  (registers task models and checkpoint handling)

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / 'tests' / 'assets'

# One intra-op thread: the unit tests use tiny tensors, where a second thread only adds contention on the
# 2-core CI machine (measured: up to 30x slower under load). Benchmarks set their own thread counts.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def assets() -> Path:
    return ASSETS
