#!/usr/bin/env python3
"""Draw the free body model's README figures (rest pose with joints, poses, shape components) as PNG files.

Every body is posed through the project's own body-model forward (``BodyModel.get_output``).

    python tools/render_body_model.py [--body-model DIR] [--out docs/images]
"""
from __future__ import annotations

import argparse
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from wham_ros.model.body_model import BodyModel, load_body_model  # noqa: E402
from wham_ros.model.free_body.poses import POSES, pose_matrices  # noqa: E402
from wham_ros.offline.render import Camera, MeshRenderer, look_at  # noqa: E402

PANEL = (200, 300)
SIDE = math.pi / 2
SKIN = (0.82, 0.74, 0.68)
DISTANCE = 20.0  # m: a far camera with a long lens, close to an orthographic view


def _turn(vertices: np.ndarray, yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return vertices @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]).T


def _camera(bodies: list[np.ndarray], width: int, height: int, margin: float = 0.05) -> Camera:
    """A camera in front of the bodies (each (V, 3), already turned) that frames all of them."""
    points = np.concatenate(bodies)
    low, high = points.min(0), points.max(0)
    scale = (1 - 2 * margin) * min(width / (high[0] - low[0]), height / (high[1] - low[1]))
    centre = np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, 0.0])
    return look_at(centre + [0.0, 0.0, DISTANCE], centre, np.array([0.0, -1.0, 0.0]), scale * DISTANCE,
                   width, height)


def _draw(faces: np.ndarray, vertices: np.ndarray, camera: Camera, joints: np.ndarray | None = None) -> np.ndarray:
    """BGR image of one body, with red dots at ``joints`` when given."""
    image = cv2.cvtColor(MeshRenderer(faces, camera.width, camera.height).render(vertices, camera, SKIN),
                         cv2.COLOR_RGB2BGR)
    if joints is not None:
        for x, y in np.round(camera.project(joints)[0]).astype(int):
            cv2.circle(image, (int(x), int(y)), 3, (40, 40, 220), -1, cv2.LINE_AA)
    return image


def _body(bm: BodyModel, pose: str | None = None, betas: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3), 24 SMPL joints (24, 3)), hip-midpoint-centred, in metres."""
    glob, body = pose_matrices(pose) if pose else (torch.eye(3).expand(1, 1, 3, 3), torch.eye(3).expand(1, 23, 3, 3))
    betas = torch.zeros(1, 10) if betas is None else betas[None]
    with torch.no_grad():
        out = bm.get_output(glob, body, betas)
        joints = torch.einsum("jv,nvc->njc", bm.J_regressor, out.vertices)
    return out.vertices[0].numpy(), joints[0].numpy()


def _label(image: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(image, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (60, 60, 60), 1, cv2.LINE_AA)
    return image


def _save(path: str, panels: list[np.ndarray], grey: bool = True) -> None:
    image = np.hstack(panels)
    cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if grey else image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--body-model", default="", help="body model folder (default: the free body)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    bm = load_body_model(args.body_model)
    faces = bm.faces_tensor.numpy()

    rest, joints = _body(bm)
    w, h = PANEL
    side_rest, side_joints = _turn(rest, SIDE), _turn(joints, SIDE)
    panels = [_draw(faces, rest, _camera([rest], 2 * w, h), joints),
              _draw(faces, side_rest, _camera([side_rest], w, h), side_joints)]
    _save(os.path.join(args.out, "free_body_rest_joints.png"), panels, grey=False)

    posed = [_turn(_body(bm, name)[0], 0.5) for name in POSES]
    camera = _camera(posed, w, h)
    _save(os.path.join(args.out, "free_body_poses.png"),
          [_label(_draw(faces, v, camera), name) for v, name in zip(posed, POSES)])

    shapes, labels = [], []
    for k in range(4):
        for sigma in (-2.0, 2.0):
            betas = torch.zeros(10)
            betas[k] = sigma
            shapes.append(_body(bm, "arms down", betas)[0])
            labels.append(f"beta{k} {sigma:+.0f}")
    camera = _camera(shapes, w // 2 + 20, h)
    _save(os.path.join(args.out, "free_body_shapes.png"),
          [_label(_draw(faces, v, camera), text) for v, text in zip(shapes, labels)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
