"""onnxruntime as the network of a task model: the same Python pre- and post-processing, the network in a session.

Every task model's ``predict`` reaches its network through ``_forward`` (the tensor mode, what ``tools/export.py``
exports); ``use_onnxruntime(model, 'model.onnx')`` replaces that one method of the instance by an onnxruntime
session, so tiling (super-resolution), test-time scales and flips (segmentation), clamping and resizing (depth)
and sliding windows (volumes) all stay the torch code. The SSD ``Detector`` reaches its head through
``_head_and_anchors`` (it also needs the feature-map sizes for the default boxes): that one is replaced by the
session's two outputs plus default boxes for the feature sizes of the torch network at that input size (computed
once per input size and cached).

An ONNX file exported at a fixed size (``tools/export.py`` without ``--dynamic``) only takes that size; tasks that
feed other sizes (super-resolution tiles, volumes' windows, segmentation at the image's size) need ``--dynamic``.
A file of batch 1 takes a batch of several images one at a time (``tools/test.py`` data loaders batch 4).

Detection graphs with NMS inside (``tools/export.py --with-nms``: ``boxes``, ``scores``, ``labels`` (int64) and
``num_dets`` (int64), padded to a fixed ``max_det``, boxes in the network input's pixels) are recognised by their
outputs (``is_nms_graph``) and replace the detector's whole ``predict`` (``NMSGraphPredict``): the graph's
detections, unpadded, mapped to the original image by the model's own inverse (``to_original`` of the YOLO
letterbox; ``SSDPostProcessor.to_original`` for SSD's resize), so the result dicts are those of ``predict`` except
that at most ``max_det`` detections come out per image (the eager path keeps ``max_per_img``, 300 by default). The
tensor mode then gives the graph's four outputs.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

OutputLike = Union[torch.Tensor, Tuple[torch.Tensor, ...]]


def ort_session(path: str, threads: Optional[int] = None):
    """An onnxruntime CPU session of ``path`` (full graph optimisation; ``threads`` intra-op threads)."""
    import onnxruntime as ort
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'ONNX file {path} does not exist')
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    except Exception as err:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
        raise ValueError(f'{path}: onnxruntime cannot load it ({type(err).__name__}: {err})') from err


class OnnxNetwork:
    """Calls like a task model's ``_forward``: a ``B x C x ...`` float tensor in, the tensor-mode outputs out
    (one tensor, or a tuple of them in ``tools/export.py``'s output order)."""

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        self.path = os.fspath(path)
        self.session = ort_session(self.path, threads)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f'{self.path}: expected an ONNX graph with one input, it has {len(inputs)}')
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)  # ints where fixed, names where dynamic
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.size_hint = 'export with tools/export.py --dynamic for other sizes'

    def _check(self, shape: Tuple[int, ...]) -> None:
        fixed = [(i, want) for i, want in enumerate(self.input_shape) if isinstance(want, int)]
        if len(shape) != len(self.input_shape) or any(shape[i] != want for i, want in fixed):
            want = 'x'.join(str(d) if isinstance(d, int) else '?' for d in self.input_shape)
            other_model = len(shape) != len(self.input_shape) or any(shape[i] != w for i, w in fixed if i == 1)
            hint = ('it is not an ONNX file of this config (another rank or channel count): export this config with '
                    'tools/export.py' if other_model else self.size_hint)  # only sizes differ: the size hint helps
            raise ValueError(f'{self.path} takes inputs of shape {want}, got {"x".join(map(str, shape))}; {hint}')

    def run(self, inputs: torch.Tensor) -> List[np.ndarray]:
        array = inputs.detach().to('cpu', torch.float32).contiguous().numpy()
        if self.input_shape and self.input_shape[0] == 1 and array.ndim and array.shape[0] > 1:
            # a batch-1 file: one image at a time, outputs concatenated along the batch axis
            parts = [self.run(inputs[i:i + 1]) for i in range(array.shape[0])]
            return [np.concatenate(outs) for outs in zip(*parts)]
        self._check(tuple(array.shape))
        return self.session.run(self.output_names, {self.input_name: array})

    def __call__(self, inputs: torch.Tensor) -> OutputLike:
        outputs = [torch.from_numpy(o).to(inputs.device) for o in self.run(inputs)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


class _DetectorHead:
    """``Detector._head_and_anchors`` from the session: (class logits, box deltas) and the default boxes."""

    def __init__(self, model: nn.Module, network: OnnxNetwork) -> None:
        self.model, self.network = model, network
        self._feature_shapes: Dict[Tuple[int, ...], List[torch.Size]] = {}

    def feature_shapes(self, inputs: torch.Tensor) -> List[torch.Size]:
        key = tuple(inputs.shape[1:])
        if key not in self._feature_shapes:  # the torch network once at this size: its feature-map sizes
            with torch.no_grad():
                feats = self.model.extract(torch.zeros((1,) + key, device=inputs.device))
            self._feature_shapes[key] = [f.shape for f in feats]
        return self._feature_shapes[key]

    def __call__(self, inputs: torch.Tensor):
        outputs = self.network(inputs)
        if not isinstance(outputs, tuple) or len(outputs) != 2:
            raise ValueError(f'{self.network.path}: a detector graph has two outputs (class logits, box deltas); '
                             f'this one has {len(self.network.output_names)}')
        cls_logits, deltas = outputs
        shapes = self.feature_shapes(inputs)
        anchors = self.model.anchor_generator([s[-2:] for s in shapes], inputs.shape[-2:], inputs.device,
                                              cls_logits.dtype)
        return cls_logits, deltas, anchors


def is_nms_graph(network: OnnxNetwork) -> bool:
    """Whether ``network`` is a ``tools/export.py --with-nms`` graph: four outputs, ``boxes (D, 4)``, ``scores (D,)``
    float, ``labels (D,)`` and ``num_dets (1,)`` int64, whatever their names (the exporter calls them
    ``output0..3``). Tensor-mode exports (and their int8 versions) only have float outputs."""
    outputs = network.session.get_outputs()
    if len(outputs) != 4:
        return False
    types = [o.type for o in outputs]
    ranks = [len(o.shape) for o in outputs]
    return (types == ['tensor(float)', 'tensor(float)', 'tensor(int64)', 'tensor(int64)'] and ranks == [2, 1, 1, 1]
            and outputs[0].shape[-1] == 4)


def _inverse_mapping(model: nn.Module):
    """The detector's own map from network-input boxes to the original image: ``(boxes, meta, input_hw) -> boxes``."""
    from .detection.yolo.model import YOLODetector, to_original
    if isinstance(model, YOLODetector):
        return to_original
    post = getattr(model, 'post_processor', None)
    if post is not None and hasattr(post, 'to_original'):
        return post.to_original
    raise ValueError(f'an --with-nms ONNX file needs a detector config (YOLODetector or the SSD Detector); '
                    f'this config builds a {type(model).__name__}')


class NMSGraphPredict:
    """A detector's ``predict`` from an ``--with-nms`` graph: per image the graph's ``num_dets`` detections (best
    first) with boxes mapped to the original image by the model's own inverse; ``img_id`` kept from ``meta``."""

    def __init__(self, model: nn.Module, network: OnnxNetwork) -> None:
        self.network = network
        self.to_original = _inverse_mapping(model)
        network.size_hint = ("an --with-nms file takes the one size it was exported at: the config's pipeline must "
                             'give that size, or export again with --shape')
        self.max_det = network.session.get_outputs()[1].shape[0]
        if not isinstance(self.max_det, int):  # the TorchScript exporter leaves it unnamed: the padded length
            if not all(isinstance(d, int) for d in network.input_shape):
                raise ValueError(f'{network.path}: an --with-nms graph takes one fixed input size, this one takes '
                                 f'{network.input_shape}')
            self.max_det = int(network.run(torch.zeros(network.input_shape))[1].shape[0])

    def __call__(self, inputs: torch.Tensor, data_samples: Optional[List[dict]] = None) -> List[dict]:
        from .detection.nms_export import unpad
        results = []
        for i in range(inputs.shape[0]):
            meta = (data_samples[i].get('meta', {}) if data_samples else None) or {}
            det = unpad(*self.network.run(inputs[i:i + 1]))
            boxes = self.to_original(torch.from_numpy(np.ascontiguousarray(det['bboxes'], np.float32)).reshape(-1, 4),
                                     meta, tuple(inputs.shape[-2:]))
            r = dict(bboxes=boxes.numpy().astype(np.float32).reshape(-1, 4),
                     scores=np.asarray(det['scores'], np.float32), labels=np.asarray(det['labels'], np.int64))
            if meta.get('img_id') is not None:
                r['img_id'] = meta['img_id']
            results.append(r)
        return results


def use_onnxruntime(model: nn.Module, path: str, threads: Optional[int] = None) -> nn.Module:
    """Run ``model``'s network in onnxruntime from now on (``path``: a ``tools/export.py`` or
    ``tools/quantize.py`` output of this config); pre- and post-processing stay the model's own. Returns it.

    An ``--with-nms`` detection graph replaces ``predict`` as a whole (``NMSGraphPredict``); its cap is
    ``model.onnx_max_det`` (``None`` for other files) and is logged."""
    network = OnnxNetwork(path, threads)
    model._forward = network  # the instance attribute shadows the method: predict() now calls the session
    model.onnx_max_det = None
    if is_nms_graph(network):
        model.predict = NMSGraphPredict(model, network)
        model.onnx_max_det = model.predict.max_det
        from mmengine.logging import print_log
        print_log(f'{network.path}: detection with NMS in the graph, at most {model.onnx_max_det} detections per '
                  f'image (boxes mapped to the original image by the model\'s own inverse)', logger='current')
    elif hasattr(model, '_head_and_anchors') and hasattr(model, 'anchor_generator'):
        model._head_and_anchors = _DetectorHead(model, network)
    model.onnx_network = network
    return model


__all__ = ['NMSGraphPredict', 'OnnxNetwork', 'is_nms_graph', 'ort_session', 'use_onnxruntime']
