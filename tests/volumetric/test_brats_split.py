"""The BraTS config validates on held-out cases: a deterministic 80/20 split by case id, and overlapping train/val
lists refused with the shared cases named (by the dataset, so by the Runner that builds it)."""
from pathlib import Path

import pytest
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from data.datasets.brats import BraTSDataset, check_disjoint, split_cases, write_split, write_synthetic_case
from tasks import load_config

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs' / 'unet3d_revmbconv_300e_brats.py'


@pytest.fixture(scope='module')
def brats_root(tmp_path_factory):
    """Five tiny synthetic case folders synthetic_0000 ... synthetic_0004."""
    root = tmp_path_factory.mktemp('brats')
    for seed in range(5):
        write_synthetic_case(root, shape=(8, 8, 8), seed=seed)
    return root


def test_split_is_deterministic_disjoint_and_80_20():
    ids = [f'BraTS20_Training_{i:03d}' for i in range(1, 370)]
    split = split_cases(ids)
    assert len(split['train']) == 295 and len(split['val']) == 74   # round(0.2 x 369)
    assert set(split['train']).isdisjoint(split['val']) and sorted(split['train'] + split['val']) == ids
    assert split_cases(list(reversed(ids))) == split               # the listing order does not matter
    assert split_cases(ids, seed=1) != split and split_cases(ids, seed=0) == split
    assert split_cases(['a', 'b']) in ({'train': ['a'], 'val': ['b']}, {'train': ['b'], 'val': ['a']})
    with pytest.raises(ValueError, match='duplicate case ids'):
        split_cases(['a', 'a', 'b'])
    with pytest.raises(ValueError, match='val_fraction'):
        split_cases(ids, val_fraction=1.0)


def test_dataset_reads_one_part_of_the_split(brats_root, tmp_path):
    train = BraTSDataset(str(brats_root), split='train')
    val = BraTSDataset(str(brats_root), split='val')
    assert len(train) == 4 and len(val) == 1
    assert sorted(train.case_names + val.case_names) == [f'synthetic_{i:04d}' for i in range(5)]
    assert val[0]['meta']['img_id'] == val.case_names[0]
    # the written lists are the same split and are accepted as case lists
    paths = write_split(brats_root, tmp_path / 'split')
    assert Path(paths['val']).read_text().split() == val.case_names
    assert BraTSDataset(str(brats_root), cases=paths['train'], split='train').case_names == train.case_names


def test_overlapping_lists_are_refused_naming_the_cases(brats_root):
    with pytest.raises(ValueError, match=r'1 BraTS case\(s\) are in both .*: synthetic_0001;'):
        BraTSDataset(str(brats_root), cases=['synthetic_0000', 'synthetic_0001'], split='train',
                     other_cases=['synthetic_0001', 'synthetic_0002'])
    # "every case for training" with an explicit validation list: the old config's mistake
    with pytest.raises(ValueError, match='in both the training and the validation list'):
        BraTSDataset(str(brats_root), other_cases=['synthetic_0003'])
    # an explicit training list that holds a case of the computed validation part
    val_case = split_cases([f'synthetic_{i:04d}' for i in range(5)])['val'][0]
    with pytest.raises(ValueError, match=val_case):
        BraTSDataset(str(brats_root), cases=[val_case], split='train')
    check_disjoint(['a'], ['b'])
    with pytest.raises(ValueError, match='and 2 more'):
        check_disjoint([str(i) for i in range(12)], [str(i) for i in range(12)])


def test_config_builds_held_out_loaders_and_the_runner_refuses_overlap(brats_root):
    cfg = load_config(str(CONFIG))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = str(brats_root)
        loader.num_workers, loader.persistent_workers = 0, False
    with DefaultScope.overwrite_default_scope(cfg.default_scope):   # as inside the Runner
        train = Runner.build_dataloader(cfg.train_dataloader).dataset
        val = Runner.build_dataloader(cfg.val_dataloader).dataset
        assert len(train.case_names) == 4 and len(val.case_names) == 1
        assert set(train.case_names).isdisjoint(val.case_names)
        cfg.val_dataloader.dataset.cases = [train.case_names[0]]
        with pytest.raises(ValueError, match=train.case_names[0]):
            Runner.build_dataloader(cfg.val_dataloader)
