"""The task model: sliding window, predict/visualize/save_result/read_input, ONNX export, config, learning."""
import numpy as np
import pytest
import torch

from data.datasets.brats import SyntheticBraTS, make_synthetic_case, read_nifti, write_synthetic_case
from data.evaluators.brats_metrics import score_case
from data.transforms.volumetric import RandomIntensityShiftScale, RandomVolumeFlip
from tasks import Inferencer, build_model
from tasks.volumetric.losses import labels_to_regions, regions_to_labels
from tasks.volumetric.sliding_window import gaussian_weight, sliding_window_inference, window_starts
from conftest import make_model


def test_gaussian_weight_and_windows():
    w = gaussian_weight((8, 8, 8))
    assert w.shape == (8, 8, 8) and w.max() == 1 and w.min() > 0
    assert w[3, 3, 3] == w[4, 4, 4] == w.max() and w[0, 0, 0] == w.min()
    assert window_starts(32, 16, 0.5) == [0, 8, 16]
    assert window_starts(30, 16, 0.5) == [0, 7, 14]
    assert window_starts(10, 16, 0.5) == [0]


@pytest.mark.parametrize('gaussian', [True, False])
def test_sliding_window_reproduces_a_local_predictor(gaussian):
    x = torch.randn(2, 4, 20, 13, 9)
    calls = []

    def predictor(patch):
        calls.append(patch.shape)
        return patch[:, :2] * 2
    out = sliding_window_inference(x, predictor, (8, 8, 8), overlap=0.5, gaussian=gaussian, sw_batch_size=3,
                                   progress=False)
    assert out.shape == (2, 2, 20, 13, 9)
    assert torch.allclose(out, x[:, :2] * 2, atol=1e-5)  # a weighted mean of equal predictions
    assert all(c[2:] == (8, 8, 8) for c in calls)


def test_sliding_window_weights_centre_more():
    x = torch.zeros(1, 1, 12, 8, 8)
    starts = []

    def predictor(patch):  # each window predicts its own index: the output shows who wins each voxel
        starts.append(len(starts))
        return torch.full_like(patch, float(len(starts) - 1))
    out = sliding_window_inference(x, predictor, (8, 8, 8), overlap=0.5, gaussian=True, progress=False)
    assert len(starts) == 2  # windows at D = 0 and 4
    assert out[0, 0, 2].mean() < 0.5 < out[0, 0, 9].mean()
    assert out[0, 0, 5:7].mean() == pytest.approx(0.5, abs=0.3)


def test_region_encoding_round_trip():
    labels = torch.tensor([[0, 1, 2, 3, 4]])
    regions = labels_to_regions(labels)
    assert regions[0, :, 4].tolist() == [1, 1, 1] and regions[0, :, 2].tolist() == [1, 0, 0]
    assert regions_to_labels(regions.bool()).tolist() == [[0, 1, 2, 4, 4]]


def test_predict_shapes_and_geometry():
    model = make_model(patch_size=(16, 16, 16)).eval()
    case = make_synthetic_case((20, 18, 16), seed=4)
    data = model.data_preprocessor([case], False)
    result = model(**data, mode='predict')[0]
    assert result['seg'].shape == (20, 18, 16) and result['seg'].dtype == np.uint8
    assert set(np.unique(result['seg'])) <= {0, 1, 2, 4}
    assert np.array_equal(result['affine'], np.eye(4)) and result['img_id'] == case['meta']['img_id']
    logits = model(data['inputs'][:, :, :16, :16, :16], mode='tensor')
    assert logits.shape == (1, 3, 16, 16, 16)
    with pytest.raises(ValueError, match='4 x D x H x W'):
        model.data_preprocessor([dict(img=np.zeros((3, 8, 8, 8), np.float32), meta={})], False)
    with pytest.raises(ValueError, match='divisible by 2'):
        make_model(patch_size=(15, 16, 16))


def test_infer_path_reads_visualizes_and_saves(tmp_path):
    """What tools/infer.py does: collect_inputs, Inferencer (read_input -> preprocess -> predict), visualize,
    save_result as NIfTI with the input's affine."""
    case_dir = write_synthetic_case(tmp_path / 'cases', (16, 16, 16), seed=5)
    write_synthetic_case(tmp_path / 'cases', (16, 16, 16), seed=6)
    model = make_model(patch_size=(16, 16, 16)).eval()
    assert model.collect_inputs(str(tmp_path / 'cases')) == [str(case_dir), str(case_dir.parent / 'synthetic_0006')]
    assert model.collect_inputs(str(case_dir)) == [str(case_dir)]
    assert model.supports_video is False and '.nii.gz' in model.input_suffixes
    inferencer = Inferencer.__new__(Inferencer)  # the config-free part of Inferencer
    inferencer.model, inferencer.pipeline = model, []
    result = inferencer(str(case_dir))
    assert result['seg'].shape == (16, 16, 16) and result['img_id'] == 'synthetic_0005'
    picture = inferencer.visualize(str(case_dir), result)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3 and picture.shape[0] > 100
    written = model.save_result(dict(result, affine=np.diag([2.0, 3.0, 4.0, 1.0])), str(tmp_path / 'out' / 'case'))
    seg, affine, spacing = read_nifti(written[0])
    assert written == [str(tmp_path / 'out' / 'case.nii.gz')]
    assert np.array_equal(seg, result['seg']) and spacing == (4.0, 3.0, 2.0)
    assert np.allclose(affine, np.diag([2.0, 3.0, 4.0, 1.0]))


def test_visualize_overlays_regions():
    model = make_model()
    case = make_synthetic_case((16, 16, 16), seed=1)
    picture = model.visualize(case['img'], dict(seg=case['gt_seg'].astype(np.uint8), img_id='x'))
    yellow = (picture[..., 0] > 200) & (picture[..., 1] > 150) & (picture[..., 2] < 120)
    assert yellow.any()  # ET blended in yellow
    plain = model.visualize(case['img'], dict(seg=np.zeros((16, 16, 16), np.uint8)))
    tiles = plain[:-22]  # above the legend: grey slices only
    assert np.array_equal(tiles[..., 0], tiles[..., 2])


def test_onnx_export_of_the_eval_network(tmp_path):
    import onnxruntime as ort
    model = make_model(patch_size=(16, 16, 16), use_se=True).eval()
    x = torch.randn(1, 4, 16, 16, 16)
    with torch.no_grad():
        reference = model(x, mode='tensor')

    class TensorMode(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, inputs):
            return self.m(inputs, mode='tensor')
    path = str(tmp_path / 'unet3d.onnx')
    with torch.no_grad():
        torch.onnx.export(TensorMode(model).eval(), (x,), path, input_names=['input'], output_names=['logits'],
                          opset_version=18, dynamo=True, external_data=False, verbose=False)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    out = session.run(None, {'input': x.numpy()})[0]
    assert out.shape == (1, 3, 16, 16, 16)
    assert np.abs(out - reference.numpy()).max() < 1e-4 * max(1.0, float(reference.abs().max()))


def test_configs_build():
    model = build_model('configs/unet3d_revmbconv_20e_synthetic.py')
    assert model.backbone.reversible and model.head.reversible
    from mmengine.config import Config
    cfg = Config.fromfile('configs/unet3d_revmbconv_20e_synthetic.py')
    with torch.no_grad():
        assert model(torch.randn(1, *cfg.benchmark_shape), mode='tensor').shape == (1, 3, 32, 32, 32)
    plain = Config.fromfile('configs/unet3d_mbconv_300e_brats.py')
    assert plain.model.backbone.reversible is False and plain.model.head.reversible is False


@pytest.mark.slow
def test_learns_whole_tumour_on_synthetic_cases():
    torch.manual_seed(0)
    np.random.seed(0)
    train = SyntheticBraTS(6, (24, 24, 24), seed=0, pipeline=[RandomVolumeFlip(), RandomIntensityShiftScale()])
    model = make_model(patch_size=(24, 24, 24), channels=(8, 16), depths=(1, 1)).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    assert model.backbone.stages[0].uses_function(torch.zeros(1, requires_grad=True))
    for step in range(24):
        data = model.data_preprocessor([train[(2 * step + k) % 6] for k in range(2)], True)
        losses = model(**data, mode='loss')
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    model.eval()
    scores = []
    for case in SyntheticBraTS(2, (24, 24, 24), seed=500).cases:
        result = model(**model.data_preprocessor([case], False), mode='predict')[0]
        scores.append(score_case(result['seg'], case['gt_seg']))
    wt = np.mean([s['Dice_WT'] for s in scores])
    print('synthetic WT Dice', wt, 'TC', np.mean([s['Dice_TC'] for s in scores]),
          'ET', np.mean([s['Dice_ET'] for s in scores]))
    assert wt > 0.7
