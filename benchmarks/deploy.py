#!/usr/bin/env python
"""CPU deployment speed: torch eager, fused (Conv+BN folded), onnxruntime fp32 and onnxruntime int8, in one run.

For MobileNetV2-224 (classification), SSDLite320-MobileNetV3 (detection), LR-ASPP-MobileNetV3 at 520x520
(segmentation), ESPCN x3 on a 256x256 LR image (super-resolution) and FastDepth-224 (depth), batch 1, at 1 and 2
threads: the network alone (tensor mode on the preprocessed input) and the whole predict path (pipeline, data
preprocessor, network, post-processing, on a photo), all variants timed in turns (``tasks.profiling.
time_interleaved``) so load changes hit them alike. torchvision's own model (where it has one: MobileNetV2,
SSDLite320, LR-ASPP; random weights converted to ours, so both compute the same function) is timed beside them.
Ratios are to our torch eager and to torchvision eager (< 1: faster).

int8 is ``tools/quantize.py``'s recipe (QDQ, per-channel symmetric int8 weights, uint8 activations, percentile
99.9 calibration, per-channel ranges where an int8 convolution meets a float operator, first and last layers in
float) calibrated on the bundled photos (T91 for ESPCN). The weights are random except ESPCN's (bundled
checkpoint), so the int8 agreement figures printed for the other networks (top-1 / detections / labels / depth
against fp32 on the bundled photos) are a proxy, not accuracy.

SSDLite's backbone (the MobileNetV3-Large feature extractor alone, the detection backbone of issue 10's target) is
timed as its own network too (``backbone/``: eager, fused, onnxruntime fp32 and int8, torchvision's
``model.backbone``); its int8 keeps only the first convolution in float (its outputs are features, not results).

    python benchmarks/deploy.py --runs 30 [--threads 1 2] [--models mobilenetv2 ssdlite ...] [--json OUT]
"""
from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / 'tools'))

import data  # noqa: E402,F401
import tasks  # noqa: E402,F401
from backbones.converters import WEIGHT_CONVERTERS  # noqa: E402
from data.io import read_rgb  # noqa: E402
from data.transforms.resize import bicubic_resize  # noqa: E402
from tasks import Inferencer, fuse, load_config  # noqa: E402
from tasks.cli import non_negative_int, positive_int, run_cli  # noqa: E402
from tasks.onnx_backend import use_onnxruntime  # noqa: E402
from tasks.profiling import time_interleaved  # noqa: E402

PHOTOS = sorted(glob.glob(str(REPO / 'tests' / 'assets' / 'detection' / 'coco8' / 'images' / '*' / '*.jpg')))
T91 = REPO / 'tests' / 'assets' / 'sr' / 'T91'


def _tv_mobilenet_v2():
    from torchvision.models import mobilenet_v2
    return mobilenet_v2(weights=None), lambda m, x: m(x)


def _tv_ssdlite():
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)

    def network(m, x):  # backbone + head, as our tensor mode
        feats = list(m.backbone(x).values())
        return m.head(feats)
    return model, network


def _tv_lraspp():
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large
    return lraspp_mobilenet_v3_large(weights=None, weights_backbone=None), lambda m, x: m(x)['out']


MODELS = {
    'mobilenetv2': dict(config='classifier_mobilenetv2_1x_imagenet.py', size=(224, 224), tv=_tv_mobilenet_v2,
                        convert='mobilenet_v2'),
    'ssdlite': dict(config='ssdlite_mobilenetv3-large_660e_coco.py', size=None, tv=_tv_ssdlite,
                    convert='ssdlite320_mobilenet_v3_large'),
    'lraspp': dict(config='lraspp_mobilenetv3-large_30e_coco-voc.py', size=(520, 520), tv=_tv_lraspp,
                   convert='lraspp_mobilenet_v3_large'),
    'espcn_x3': dict(config='espcn_x3_500e_t91.py', size=(256, 256), checkpoint='checkpoints/espcn_x3_t91.pth'),
    'fastdepth': dict(config='fastdepth_mobilenetv1_20e_nyu.py', size=(224, 224)),
}


def photo(path: str, size) -> np.ndarray:
    image = read_rgb(path)
    return image if size is None else bicubic_resize(image, size)


def network_input(inf: Inferencer, image: np.ndarray) -> torch.Tensor:
    return inf.model.data_preprocessor([inf.sample(image)], False)['inputs']


def build(name: str, spec: dict, tmp: str, threads: List[int]) -> dict:
    """Our eager and fused models, torchvision's, and onnxruntime fp32/int8 sessions for every thread count."""
    import quantize as qtool
    from export import export
    cfg = load_config(REPO / 'configs' / spec['config'])
    if name == 'ssdlite':
        cfg.model.label_map = cfg.model.classes = cfg.model.cat_ids = None  # torchvision's 90 classes
    checkpoint = str(REPO / spec['checkpoint']) if spec.get('checkpoint') else None
    eager = Inferencer(cfg, checkpoint)
    tv = tv_net = None
    if spec.get('tv'):
        torch.manual_seed(0)
        tv, tv_net = spec['tv']()
        tv.eval()
        missing, unexpected = eager.model.load_state_dict(WEIGHT_CONVERTERS[spec['convert']](tv.state_dict()),
                                                          strict=False)
        if missing or unexpected:
            raise RuntimeError(f'{name}: torchvision weights do not convert fully: missing {missing[:5]}, '
                               f'unexpected {unexpected[:5]}')
    fused = copy.copy(eager)
    fused.model = fuse(copy.deepcopy(eager.model))
    image = photo(PHOTOS[0], spec['size'])
    x = network_input(eager, image)
    backbone = None
    if name == 'ssdlite':
        backbone = build_backbone(eager, fused, tv, x, tmp, threads,
                                  [network_input(eager, photo(p, spec['size'])).numpy() for p in PHOTOS])
    fp32, int8 = os.path.join(tmp, f'{name}_fp32.onnx'), os.path.join(tmp, f'{name}_int8.onnx')
    dynamic = name.startswith('espcn')
    export(eager.model, tuple(x.shape[1:]), fp32, opset=17, dynamic=dynamic, legacy=True)
    if name.startswith('espcn'):
        calib = list(qtool.folder_inputs(eager, str(T91), 32))
    else:
        calib = [network_input(eager, photo(p, spec['size'])).numpy() for p in PHOTOS]
        if spec['size'] is None:  # SSD: the preprocessor resizes every photo to 320x320
            assert len({c.shape for c in calib}) == 1
    import onnxruntime as ort
    input_name = ort.InferenceSession(fp32, providers=['CPUExecutionProvider']).get_inputs()[0].name
    qtool.quantize(fp32, int8, qtool.ArrayReader(input_name, qtool.center_crop_common(calib)), 'percentile',
                   qtool.default_exclusions(fp32), 99.9, channel_inputs=calib)
    ort_models = {}
    for t in threads:
        for kind, path in (('ort_fp32', fp32), ('ort_int8', int8)):
            inf = copy.copy(eager)
            inf.model = use_onnxruntime(copy.deepcopy(eager.model), path, t)
            ort_models[(kind, t)] = inf
    return dict(cfg=cfg, eager=eager, fused=fused, tv=tv, tv_net=tv_net, image=image, x=x, ort=ort_models,
                fp32=fp32, int8=int8, backbone=backbone)


class _Features(torch.nn.Module):
    """A task model's backbone alone, its feature maps as a tuple (what the ONNX export takes)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone

    def forward(self, x: torch.Tensor):
        return tuple(self.backbone(x))


def build_backbone(eager: Inferencer, fused: Inferencer, tv, x: torch.Tensor, tmp: str, threads: List[int],
                   calib: List[np.ndarray]) -> dict:
    """Callables of the backbone alone: torch eager / fused / torchvision, onnxruntime fp32 and int8 sessions
    (int8: ``tools/quantize.py``'s recipe with only the first convolution in float)."""
    import quantize as qtool
    from export import export
    from tasks.onnx_backend import ort_session
    fp32, int8 = os.path.join(tmp, 'backbone_fp32.onnx'), os.path.join(tmp, 'backbone_int8.onnx')
    export(eager.model, tuple(x.shape[1:]), fp32, opset=17, legacy=True, wrapper=_Features(eager.model))
    first = qtool.first_layers(fp32)
    qtool.quantize(fp32, int8, qtool.ArrayReader('input', calib), 'percentile', first, 99.9, channel_inputs=calib)
    feed = x.numpy()
    sessions = {(kind, t): ort_session(path, t) for t in threads for kind, path in (('ort_fp32', fp32),
                                                                                  ('ort_int8', int8))}
    fns = {'torch_eager': lambda t: (lambda: eager.model.backbone(x)),
           'torch_fused': lambda t: (lambda: fused.model.backbone(x))}
    for kind in ('ort_fp32', 'ort_int8'):
        fns[kind] = (lambda k: lambda t: (lambda: sessions[(k, t)].run(None, {'input': feed})))(kind)
    if tv is not None:  # torchvision's SSDLite feature extractor without its extra blocks (our neck)
        parts = tv.backbone.features
        fns['torchvision_eager'] = lambda t: (lambda: parts[1](parts[0](x)))
    return dict(fns=fns, first=first)


def agreement(name: str, built: dict) -> Dict[str, float]:
    """int8 against fp32 (onnxruntime, one thread) on the bundled photos (a proxy with random weights)."""
    a_inf, b_inf = built['ort'][('ort_fp32', min(k[1] for k in built['ort']))], \
        built['ort'][('ort_int8', min(k[1] for k in built['ort']))]
    spec = MODELS[name]
    out: Dict[str, List[float]] = {}
    if name.startswith('espcn'):
        return {}
    for path in PHOTOS:
        image = photo(path, spec['size'])
        a, b = a_inf(image), b_inf(image)
        if name == 'mobilenetv2':
            out.setdefault('top1_agree', []).append(float(a['label'] == b['label']))
        elif name == 'ssdlite':
            top_a = {k: v[:20] for k, v in a.items() if isinstance(v, np.ndarray)}
            matched = match_box_iou(b, top_a)
            out.setdefault('top20_dets_matched_iou0.5', []).append(matched / max(len(top_a['scores']), 1))
        elif name == 'lraspp':
            out.setdefault('pixel_label_agree', []).append(float((a['seg'] == b['seg']).mean()))
        elif name == 'fastdepth':
            out.setdefault('depth_rel_abs_diff', []).append(
                float(np.abs(a['depth'] - b['depth']).mean() / max(np.abs(a['depth']).mean(), 1e-9)))
    return {k: float(np.mean(v)) for k, v in out.items()}


def match_box_iou(ours: dict, reference: dict, iou_thr: float = 0.5) -> int:
    """Reference detections with a detection of the same label at IoU >= ``iou_thr`` in ``ours``."""
    from torchvision.ops import box_iou
    if len(reference['scores']) == 0 or len(ours['scores']) == 0:
        return 0
    iou = box_iou(torch.as_tensor(reference['bboxes']), torch.as_tensor(ours['bboxes'])).numpy()
    same = reference['labels'][:, None] == ours['labels'][None, :]
    return int(((iou >= iou_thr) & same).any(1).sum())


def timed_functions(name: str, built: dict, t: int, channels_last: bool) -> Dict[str, Callable[[], object]]:
    x, image = built['x'], built['image']
    eager, fused = built['eager'], built['fused']
    fns: Dict[str, Callable[[], object]] = {
        'net/torch_eager': lambda: eager.model(x, mode='tensor'),
        'net/torch_fused': lambda: fused.model(x, mode='tensor'),
        'net/ort_fp32': lambda: built['ort'][('ort_fp32', t)].model(x, mode='tensor'),
        'net/ort_int8': lambda: built['ort'][('ort_int8', t)].model(x, mode='tensor'),
        'predict/torch_eager': lambda: eager(image),
        'predict/torch_fused': lambda: fused(image),
        'predict/ort_fp32': lambda: built['ort'][('ort_fp32', t)](image),
        'predict/ort_int8': lambda: built['ort'][('ort_int8', t)](image),
    }
    if channels_last:  # weights in NHWC: convolutions then run (and output) channels_last
        cl = copy.copy(fused)
        cl.model = copy.deepcopy(fused.model).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        fns['net/torch_fused_channels_last'] = lambda: cl.model(x_cl, mode='tensor')
        fns['predict/torch_fused_channels_last'] = lambda: cl(image)
    if built.get('backbone'):
        for kind, make in built['backbone']['fns'].items():
            fns[f'backbone/{kind}'] = make(t)
    if built['tv'] is not None:
        tv, tv_net = built['tv'], built['tv_net']
        fns['net/torchvision_eager'] = lambda: tv_net(tv, x)
        if name == 'ssdlite':
            tv_input = [torch.from_numpy(image).permute(2, 0, 1).float() / 255]
            fns['predict/torchvision_eager'] = lambda: tv(tv_input)
    return fns


def ratios(latency: Dict[str, dict], stat: str = 'median_ms') -> Dict[str, dict]:
    """Per variant its ``stat`` (wall ``median_ms`` or process ``cpu_ms``) over torch eager's, torchvision's and
    (int8) onnxruntime fp32's."""
    out = {}
    for key, stats in latency.items():
        part = key.split('/')[0]
        r = dict(vs_torch_eager=stats[stat] / latency[f'{part}/torch_eager'][stat])
        if f'{part}/torchvision_eager' in latency:
            r['vs_torchvision_eager'] = stats[stat] / latency[f'{part}/torchvision_eager'][stat]
        if key.endswith('ort_int8'):
            r['vs_ort_fp32'] = stats[stat] / latency[f'{part}/ort_fp32'][stat]
        out[key] = r
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', choices=list(MODELS), default=list(MODELS),
                        help='which networks (default: all)')
    parser.add_argument('--threads', type=positive_int, nargs='+', default=[1, 2],
                        help='thread counts (default 1 2)')
    parser.add_argument('--runs', type=positive_int, default=30, help='timed rounds (default 30)')
    parser.add_argument('--warmup', type=non_negative_int, default=3, help='untimed rounds first (default 3)')
    parser.add_argument('--no-channels-last', action='store_true', help='skip the fused channels_last variant')
    parser.add_argument('--json', help='also write the report to this JSON file')
    args = parser.parse_args(argv)
    report: Dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix='mobilevision_deploy_') as tmp:
        for name in args.models:
            torch.set_num_threads(1)
            built = build(name, MODELS[name], tmp, args.threads)
            entry = dict(input=list(built['x'].shape), agreement_int8_vs_fp32=agreement(name, built), threads={})
            for t in args.threads:
                torch.set_num_threads(t)
                fns = timed_functions(name, built, t, not args.no_channels_last)
                latency = time_interleaved(fns, args.runs, args.warmup)
                entry['threads'][str(t)] = dict(latency_ms={k: round(v['median_ms'], 3) for k, v in latency.items()},
                                                cpu_ms={k: round(v['cpu_ms'], 3) for k, v in latency.items()},
                                                cpu_ratios={k: {a: round(b, 3) for a, b in r.items()}
                                                            for k, r in ratios(latency, 'cpu_ms').items()},
                                                ratios={k: {a: round(b, 3) for a, b in r.items()}
                                                        for k, r in ratios(latency).items()})
                print_table(name, t, latency, ratios(latency))
                print('  cpu-time ratios: ' + '; '.join(f'{k} {v["vs_torch_eager"]:.2f}'
                                                         for k, v in sorted(ratios(latency, 'cpu_ms').items())))
            if entry['agreement_int8_vs_fp32']:
                print(f'  int8 vs fp32 (proxy, random weights): {entry["agreement_int8_vs_fp32"]}')
            report[name] = entry
            sys.stdout.flush()
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    return report


def print_table(name: str, threads: int, latency: Dict[str, dict], rat: Dict[str, dict]) -> None:
    print(f'{name}  threads {threads}')
    for key in sorted(latency):
        r = rat[key]
        extra = ''.join(f'  {k} {v:.2f}' for k, v in r.items())
        print(f'  {key:34s} {latency[key]["median_ms"]:8.2f} ms (cpu {latency[key]["cpu_ms"]:8.2f} ms){extra}')


if __name__ == '__main__':
    run_cli(main)
