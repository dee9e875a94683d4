#!/usr/bin/env python3
"""Per-frame cost of the overlay video: mesh rendering + compositing, for 1 and 2 people (figures only).

    .venv/bin/python bench/bench_render.py [--frames 40] [--body DIR]

People: the body model (the installed free body, else a generated SMPL-sized one; or --body)
standing upright, facing the camera with a changing turn, about 70 % of the image height tall,
side by side, walking in the top view. Camera: the official pinhole (f = sqrt(W^2 + H^2),
centred). Stages per frame, each timed on its own:

* compose: rendering the meshes over the image, skeletons, ids and the top-view panel
  (``OverlayWriter.compose``): the part with the 15 ms target at 640x360 for two people;
* body: posing the meshes with the body model (skipped when the engine returns ``verts_cam``);
* add: ``OverlayWriter.add``, everything for one frame: body + compose + video encoding.

Prints median and 95th percentile in ms, and the load average (other work on the CPU shows up
directly in these figures). 1 torch thread.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wham_ros.geometry.frames import WorldPose
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.model.body_model import load_body_model
from wham_ros.model.free_body import default_dir
from wham_ros.model.synthetic import write_body_model
from wham_ros.offline.overlay import OverlayWriter
from wham_ros.perception.base import Detection
from wham_ros.perception.tracker import TrackState
from wham_ros.pipeline import PersonResult
from wham_ros.stream.state import FrameOutput

HEIGHT_FRACTION = 0.7


def person(body_model, track_id: int, frame: int, x: float, focal: float, size: tuple[int, int]) -> PersonResult:
    """An upright body (SMPL y-up turned into the y-down camera frame) at lateral offset ``x`` (m)."""
    w, h = size
    z = focal * 1.7 / (HEIGHT_FRACTION * h)
    turn = axis_angle_to_matrix(torch.tensor([0.0, 0.4 * np.sin(0.2 * frame + track_id), 0.0])).float()
    root = torch.diag(torch.tensor([1.0, -1.0, -1.0])) @ turn
    arms = torch.zeros(23, 3)
    arms[15, 2], arms[16, 2] = -1.2, 1.2                    # shoulders: arms lowered
    body = axis_angle_to_matrix(arms).float()
    betas = torch.zeros(10)
    with torch.no_grad():
        joints = body_model.get_joints(root[None, None], body[None], betas[None]).joints[0].double()
    trans = torch.tensor([x, 0.1, z], dtype=torch.float64)
    cam = (joints[:17] + trans).numpy()
    uv = focal * cam[:, :2] / cam[:, 2:] + np.array([w / 2, h / 2])
    keypoints = np.concatenate((uv, np.full((17, 1), 0.9)), axis=1)
    box = np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])
    zeros = torch.zeros
    out = FrameOutput(frame, zeros(144), betas, zeros(3), zeros(4), root, body, trans.float(), joints.float(), None,
                      zeros(4, 3), zeros(6), zeros(3), zeros(6), zeros(3), root, zeros(3), False, False)
    position = np.array([0.05 * frame, x + 0.02 * frame * track_id, 0.9])
    world = WorldPose(np.eye(3), np.eye(3), position, np.eye(3))
    return PersonResult(track_id, TrackState.TRACKED, frame + 1, 0.0, Detection(keypoints, box), out, world,
                        np.zeros(3), np.eye(3))


def percentiles(times: list[float]) -> str:
    ms = sorted(1e3 * t for t in times)
    return f"median {statistics.median(ms):6.2f}  p95 {ms[min(len(ms) - 1, int(0.95 * len(ms)))]:6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--body", help="body model folder (default: the installed free body)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    body_dir = args.body or (default_dir() if os.path.isdir(default_dir()) else
                             write_body_model(tempfile.mkdtemp(), official_encoding=True))
    body_model = load_body_model(body_dir)
    faces = body_model.faces_tensor.numpy()
    print(f"body {body_dir}: {body_model.num_vertices} vertices, {len(faces)} triangles; "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for size in ((640, 360), (1280, 720)):
            w, h = size
            focal = float(np.hypot(w, h))
            image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            for count in (1, 2):
                video = OverlayWriter(os.path.join(folder, "bench.mp4"), size, 30.0, faces)
                stages: dict[str, list[float]] = {"compose": [], "body": [], "add": []}
                for frame in range(args.frames + 3):                     # 3 warm-up frames
                    xs = (0.0,) if count == 1 else (-0.45, 0.45)         # overlapping: both depths tested
                    people = [person(body_model, k + 1, frame, x, focal, size) for k, x in enumerate(xs)]
                    t0 = time.perf_counter()
                    verts = video.body_vertices(video.shown(people), body_model)
                    t1 = time.perf_counter()
                    video.compose(image, people, focal, (w / 2, h / 2), verts)
                    t2 = time.perf_counter()
                    video.add(image, people, focal, (w / 2, h / 2), body_model)
                    t3 = time.perf_counter()
                    if frame >= 3:
                        for name, t in (("body", t1 - t0), ("compose", t2 - t1), ("add", t3 - t2)):
                            stages[name].append(t)
                video.abort()
                print(f"{w}x{h} {count} person{'s' if count > 1 else ' '}: "
                      + "   ".join(f"{name} {percentiles(times)}" for name, times in stages.items()) + "  (ms)")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
