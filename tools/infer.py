#!/usr/bin/env python
"""Run a trained model on an image, a folder, a glob or a video file and write pictures of the results.

Images: one picture per input in --output (``<name>.png``). Videos (.mp4/.avi/.mov/.mkv/.webm): one output
video of the pictures at the input's frame rate. ``--save-raw`` also writes each task's raw result (detections
json, depth .npy/16-bit PNG, label maps, NIfTI volumes). A progress bar shows the frames per second.
"""
from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import time
from typing import List

import cv2
import numpy as np
from tqdm import tqdm

import data  # noqa: F401
import tasks  # noqa: F401
from data.io import write_rgb
from tasks import Inferencer

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--input', required=True, help='an image, a folder, a glob pattern or a video file')
    parser.add_argument('--output', required=True, help='output folder')
    parser.add_argument('--save-raw', action='store_true', help="also write the task's raw results")
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--max-frames', type=int, help='stop a video after this many frames')
    return parser.parse_args(argv)


def collect_inputs(path: str, inferencer: Inferencer) -> List[str]:
    """The files under ``path``: the model's own discovery first (e.g. volume cases), else images/videos."""
    found = inferencer.model.collect_inputs(path)
    if found is not None:
        return found
    suffixes = tuple(inferencer.model.input_suffixes) + (VIDEO_SUFFIXES if inferencer.model.supports_video else ())
    if osp.isdir(path):
        files = sorted(osp.join(path, f) for f in os.listdir(path) if f.lower().endswith(suffixes))
    elif osp.isfile(path):
        files = [path]
    else:
        files = sorted(f for f in glob.glob(path) if f.lower().endswith(suffixes))
    if not files:
        raise SystemExit(f'no input found at {path} (looked for {", ".join(suffixes)})')
    return files


def run_video(inferencer: Inferencer, path: str, out_dir: str, save_raw: bool, max_frames=None) -> str:
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise SystemExit(f'cannot open video {path}')
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames:
        total = min(total or max_frames, max_frames)
    stem = osp.splitext(osp.basename(path))[0]
    out_path = osp.join(out_dir, stem + '_result.mp4')
    writer = None
    bar = tqdm(total=total, desc=osp.basename(path), unit='frame')
    start, index = time.perf_counter(), 0
    try:
        while max_frames is None or index < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            result = inferencer(rgb)
            picture = inferencer.visualize(rgb, result)
            if writer is None:
                h, w = picture.shape[:2]
                writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
                if not writer.isOpened():
                    raise SystemExit(f'cannot write video {out_path}')
            writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            if save_raw:
                inferencer.model.save_result(result, osp.join(out_dir, f'{stem}_{index:06d}'))
            index += 1
            bar.update(1)
            bar.set_postfix(fps=f'{index / (time.perf_counter() - start):.1f}')
    finally:
        bar.close()
        capture.release()
        if writer is not None:
            writer.release()
    if index == 0:
        raise SystemExit(f'video {path} has no readable frame')
    print(f'{path}: {index} frames at {index / (time.perf_counter() - start):.2f} frames/s -> {out_path}')
    return out_path


def main(argv=None) -> List[str]:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    inferencer = Inferencer(args.config, args.checkpoint, device=args.device)
    os.makedirs(args.output, exist_ok=True)
    written: List[str] = []
    files = collect_inputs(args.input, inferencer)
    images = [f for f in files if not f.lower().endswith(VIDEO_SUFFIXES)]
    for video in (f for f in files if f.lower().endswith(VIDEO_SUFFIXES)):
        written.append(run_video(inferencer, video, args.output, args.save_raw, args.max_frames))
    if images:
        start = time.perf_counter()
        bar = tqdm(images, desc='images', unit='img')
        for i, path in enumerate(bar, 1):
            result = inferencer(path)
            stem = osp.join(args.output, osp.basename(path).split('.')[0])
            picture = inferencer.visualize(path, result)
            write_rgb(stem + '.png', np.ascontiguousarray(picture))
            written.append(stem + '.png')
            if args.save_raw:
                written += inferencer.model.save_result(result, stem)
            bar.set_postfix(fps=f'{i / (time.perf_counter() - start):.2f}')
        print(f'{len(images)} image(s) -> {args.output}')
    return written


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
