#!/usr/bin/env python
"""Run a trained model on an image, a folder, a glob or a video file and write pictures of the results.

Images: one picture per input in --output, ``<name>.png``, where ``<name>`` is the input's stem, or its file name
when two inputs share a stem (``photo.jpg``, ``photo.png``); a picture that would land on an input file is called
``<name>_vis.png`` instead, and no output ever overwrites an input. Videos (.mp4/.avi/.mov/.mkv/.webm/.m4v): one
video at the input's frame rate, ``<name>_result.mp4`` of the pictures, or for super-resolution ``<name>_sr.mp4``
of the super-resolved frames (``--compare`` adds ``<name>_compare.mp4``, bicubic beside the model).

``--save-raw`` also writes each task's raw result in the form ``tools/evaluate.py`` reads: super-resolved images
in ``<output>/raw/<name>.png`` (``--metric psnr --pred-dir <output>/raw``), detections as one COCO results json
``<output>/detections.json`` for the run (``--metric coco``; ``image_id`` from ``--ann-file`` or the file stem),
label maps in ``<output>/labels/`` (``--metric miou``), depth ``<name>.npy`` (``--metric depth``), NIfTI volumes.
A progress bar shows the frames per second.

Large images, bounded memory: the super-resolution picture is a preview, each panel at most 2048 pixels a side;
the full-size super-resolved image is ``<output>/raw/<name>.png``, written with ``--save-raw`` and always when the
picture had to be scaled down. Segmentation and depth models process inputs over ``--max-pixels`` scaled down and
give their results at the input's size.
"""
from __future__ import annotations

import argparse
import glob
import inspect
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

import data  # noqa: F401
import tasks  # noqa: F401
from data.io import check_writable, is_protected, protected_files, unique_names, write_rgb
from tasks import Inferencer
from tasks.cli import positive_int, require_file

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v')
DETECTIONS_FILE = 'detections.json'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--input', required=True, help='an image, a folder, a glob pattern or a video file')
    parser.add_argument('--output', required=True, help='output folder')
    parser.add_argument('--save-raw', action='store_true', help="also write the task's raw results")
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: draw the boxes with at least this score (default 0.3; the raw json keeps '
                             'all of them)')
    parser.add_argument('--ann-file', help='detection: COCO json whose image ids the raw results use (matched by '
                                           'file name); default: the file stem')
    parser.add_argument('--compare', action='store_true',
                        help='super-resolution of a video: also write the bicubic/model side-by-side video')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip (with a warning) input images that cannot be read, instead of stopping')
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument('--threads', type=positive_int, help='torch CPU threads')
    parser.add_argument('--max-frames', type=int, help='stop a video after this many frames')
    parser.add_argument('--backend', choices=('torch', 'onnxruntime'), default='torch',
                        help='onnxruntime: CHECKPOINT is an .onnx file of this config (tools/export.py, '
                        'tools/quantize.py) run by onnxruntime; pre/post-processing stay the same')
    parser.add_argument('--fuse', action='store_true', help='fold BatchNorms into convolutions (torch backend)')
    parser.add_argument('--max-pixels', type=int,
                        help='segmentation/depth: inputs over this many pixels are processed scaled down (default: '
                             "the model's test_cfg, 2048x1024); 0 = no limit")
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f'--score-thr must lie in [0, 1], got {args.score_thr}')
    if args.max_pixels is not None and args.max_pixels < 0:
        parser.error(f'--max-pixels must be a number of pixels >= 0 (0 = no limit), got {args.max_pixels}')
    return args


def warn(message: str) -> None:
    tqdm.write(f'warning: {message}', file=sys.stderr)


def is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_SUFFIXES)


def collect_inputs(path: str, inferencer: Inferencer) -> List[str]:
    """The files under ``path``: the model's own discovery first (e.g. volume cases), else images/videos.

    A missing path, a folder or glob with no input and a file the model cannot read are errors naming the path.
    """
    model = inferencer.model
    found = model.collect_inputs(path)
    if found is not None:
        return found
    suffixes = tuple(model.input_suffixes) + (VIDEO_SUFFIXES if model.supports_video else ())
    wanted = f'{", ".join(suffixes)}{" or case folders" if not model.supports_video else ""}'
    if osp.isdir(path):
        files = sorted(osp.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(suffixes) and osp.isfile(osp.join(path, f)))
        if not files:
            raise FileNotFoundError(f'folder {path} holds no input this model reads (looked for {wanted})')
    elif osp.isfile(path):
        if not path.lower().endswith(suffixes):
            raise ValueError(f'{path}: not an input this config reads (expected {wanted})')
        files = [path]
    elif glob.has_magic(path):
        files = sorted(f for f in glob.glob(path) if f.lower().endswith(suffixes))
        if not files:
            raise FileNotFoundError(f'no input matches {path} (looked for {wanted})')
    else:
        raise FileNotFoundError(f'input {path} does not exist')
    return files


def plan_pictures(files: List[str], out_dir: str) -> List[Tuple[str, str]]:
    """``(name, picture path)`` per input: unique names (``data.io.unique_names``) and pictures that neither land
    on an input file nor on another input's picture (``<name>_vis.png`` then)."""
    taken = set()
    plan = []
    for name in unique_names(files):
        stem = name
        while (is_protected(osp.join(out_dir, stem + '.png')) or
               osp.normcase(osp.join(out_dir, stem + '.png')).lower() in taken):
            stem += '_vis'
        picture = osp.join(out_dir, stem + '.png')
        taken.add(osp.normcase(picture).lower())
        plan.append((name, picture))
    return plan


class InferenceRun:
    """What one ``tools/infer.py`` run writes: pictures, raw results, the detections json, counts for the log."""

    def __init__(self, inferencer: Inferencer, args: argparse.Namespace) -> None:
        self.inferencer, self.args = inferencer, args
        self.options = {}
        if 'score_thr' in inspect.signature(inferencer.model.visualize).parameters:
            self.options['score_thr'] = args.score_thr
        self.image_ids: Optional[Dict[str, object]] = None
        if args.ann_file:
            from data.evaluators.coco_ids import image_id_index
            from data.io import read_json
            gt = read_json(args.ann_file, 'COCO annotation file')
            if not isinstance(gt, dict) or not isinstance(gt.get('images'), list):
                raise ValueError(f'{args.ann_file} is not a COCO annotation file: it needs an "images" list')
            self.image_ids = image_id_index(gt['images'])
        self.detections: Optional[List[dict]] = None  # COCO result dicts of the run (detection models)
        self.drawn = self.boxes = 0

    # --- per result ----------------------------------------------------------------------------------------------
    def image_id(self, name: str, file: Optional[str]):
        if self.image_ids is None or file is None:
            return name
        from data.evaluators.coco_ids import image_id_of
        return image_id_of(self.image_ids, file, self.args.ann_file)

    def count(self, result: dict) -> Tuple[int, int]:
        scores = np.asarray(result.get('scores', ()), np.float32).reshape(-1)
        drawn, total = int((scores >= self.args.score_thr).sum()), int(scores.size)
        self.drawn, self.boxes = self.drawn + drawn, self.boxes + total
        return drawn, total

    def save_raw(self, result: dict, stem: str, image_id) -> List[str]:
        if not self.args.save_raw:
            return []
        if hasattr(self.inferencer.model, 'coco_results'):  # detectors: one COCO results json for the run
            if self.detections is None:
                self.detections = []
            self.detections += self.inferencer.model.coco_results(result, image_id)
            return []
        return self.inferencer.model.save_result(result, stem)

    def save_full_size(self, result: dict, stem: str, picture: np.ndarray) -> List[str]:
        """An image result (super-resolution) that the picture shows scaled down (a preview) is written at full
        size as ``--save-raw`` would, unless ``--save-raw`` already did: the output itself is never lost."""
        if self.args.save_raw or 'image' not in result or picture.shape[0] >= result['image'].shape[0]:
            return []
        paths = self.inferencer.model.save_result(result, stem)
        h, w = result['image'].shape[:2]
        tqdm.write(f'the picture is a preview ({picture.shape[1]}x{picture.shape[0]}); the full-size {w}x{h} result '
                   f'-> {", ".join(paths)}')
        return paths

    def finish(self) -> List[str]:
        """Write the run's detections json (when a detection model ran with ``--save-raw``)."""
        if self.detections is None:
            return []
        path = check_writable(osp.join(self.args.output, DETECTIONS_FILE))
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(self.detections, f)
        print(f'{len(self.detections)} detections -> {path}')
        return [path]

    # --- images ---------------------------------------------------------------------------------------------------
    def run_images(self, images: List[Tuple[str, str, str]]) -> List[str]:
        """``images``: ``(file, name, picture path)``; returns the paths written."""
        written: List[str] = []
        skipped = 0
        start = time.perf_counter()
        bar = tqdm(images, desc='images', unit='img')
        for i, (path, name, picture_path) in enumerate(bar, 1):
            try:
                image = self.inferencer.read(path)
            except (ValueError, OSError) as err:
                if not self.args.skip_bad:
                    raise
                warn(f'skipped {path}: {err}')
                skipped += 1
                continue
            result = self.inferencer.predict(image, name=name, file=path)
            written += self.save_raw(result, osp.join(self.args.output, name), self.image_id(name, path))
            picture = self.inferencer.visualize(image, result, **self.options)
            written += self.save_full_size(result, osp.join(self.args.output, name), picture)
            write_rgb(picture_path, np.ascontiguousarray(picture))
            del picture
            written.append(picture_path)
            if 'scores' in result:
                drawn, total = self.count(result)
                tqdm.write(f'{path}: drew {drawn} of {total} detections (score >= {self.args.score_thr:.2f})')
            bar.set_postfix(fps=f'{i / (time.perf_counter() - start):.2f}')
        bar.close()
        if skipped == len(images):
            raise ValueError(f'none of the {len(images)} input image(s) could be read')
        print(f'{len(images) - skipped} image(s) -> {self.args.output}'
              + (f' ({skipped} unreadable skipped)' if skipped else ''))
        return written

    # --- videos ---------------------------------------------------------------------------------------------------
    def run_video(self, path: str, name: str) -> List[str]:
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise ValueError(f'cannot read video {path}: the file is damaged or not a video OpenCV can decode')
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        announced = announced if announced > 0 else None
        max_frames = self.args.max_frames
        total = min(announced or max_frames, max_frames) if max_frames else announced
        writers: Dict[str, cv2.VideoWriter] = {}
        sr = compare = None
        bar = tqdm(total=total, desc=osp.basename(path), unit='frame')
        start, index = time.perf_counter(), 0
        try:
            while max_frames is None or index < max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                frame_name = f'{name}_{index:06d}'
                result = self.inferencer.predict(rgb, name=frame_name)
                if sr is None:
                    sr = 'image' in result  # image-to-image (super-resolution): the video of the output images
                    compare = sr and self.args.compare
                if sr:
                    self._write_frame(writers, osp.join(self.args.output, name + '_sr.mp4'), result['image'], fps)
                if not sr or compare:
                    picture = self.inferencer.visualize(rgb, result, **self.options)
                    target = name + ('_compare.mp4' if sr else '_result.mp4')
                    self._write_frame(writers, osp.join(self.args.output, target), picture, fps)
                if 'scores' in result:
                    self.count(result)
                self.save_raw(result, osp.join(self.args.output, frame_name), frame_name)
                index += 1
                bar.update(1)
                bar.set_postfix(fps=f'{index / (time.perf_counter() - start):.1f}')
        finally:
            bar.close()
            capture.release()
            for writer in writers.values():
                writer.release()
        if index == 0:
            raise ValueError(f'video {path} has no readable frame')
        if announced and index < announced and (max_frames is None or index < max_frames):
            warn(f'{path}: read {index} of the {announced} frames the file announces (truncated or damaged); '
                 f'the output has {index}')
        print(f'{path}: {index} frames at {index / (time.perf_counter() - start):.2f} frames/s -> '
              f'{", ".join(writers)}')
        return list(writers)

    @staticmethod
    def _write_frame(writers: Dict[str, cv2.VideoWriter], path: str, rgb: np.ndarray, fps: float) -> None:
        writer = writers.get(path)
        if writer is None:
            h, w = rgb.shape[:2]
            writer = cv2.VideoWriter(check_writable(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
            if not writer.isOpened():
                raise RuntimeError(f'cannot write video {path}')
            writers[path] = writer
        writer.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))


def main(argv=None) -> List[str]:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    require_file(args.config, 'config file')
    require_file(args.checkpoint, 'checkpoint')
    if osp.exists(args.output) and not osp.isdir(args.output):
        raise ValueError(f'--output {args.output} is a file; give a folder')
    inferencer = Inferencer(args.config, args.checkpoint, device=args.device, backend=args.backend, fuse=args.fuse,
                            threads=args.threads)
    if args.max_pixels is not None:
        from tasks.tiling import set_max_pixels
        set_max_pixels(inferencer.model, args.max_pixels or None)
    files = collect_inputs(args.input, inferencer)
    os.makedirs(args.output, exist_ok=True)
    run = InferenceRun(inferencer, args)
    written: List[str] = []
    with protected_files(files):
        plan = [(f, name, picture) for f, (name, picture) in zip(files, plan_pictures(files, args.output))]
        for path, name, _ in plan:
            if is_video(path):
                written += run.run_video(path, name)
        images = [p for p in plan if not is_video(p[0])]
        if images:
            written += run.run_images(images)
        written += run.finish()
    if run.boxes:
        print(f'drew {run.drawn} of {run.boxes} detections (score >= {args.score_thr:.2f})')
    return written


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
