"""Every config in configs/ builds its model (and its datasets' classes exist)."""
from pathlib import Path

import pytest

from tasks import build_model, load_config

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / 'configs').glob('*.py'))


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds(path):
    cfg = load_config(path)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert cfg.get('default_scope') == 'mobilevision'
    assert cfg.get('benchmark_shape'), 'every config names the input size of tools/benchmark.py'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if key in cfg:
            from data import DATASETS
            dataset_type = cfg[key]['dataset']['type']
            assert DATASETS.get(dataset_type) is not None or '.' in dataset_type, dataset_type
