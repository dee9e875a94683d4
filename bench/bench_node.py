#!/usr/bin/env python3
"""Node overhead per frame without the model: image conversion, output messages, TF, markers.

    .venv/bin/python bench/bench_node.py

Builds real ROS 2 messages and serialises them with rclpy (what publishing costs
before the middleware), for 1 and 5 people. Prints figures only.
"""
from __future__ import annotations

import os
import sys
import tempfile

import cv2
import numpy as np
import torch
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import median_ms

from wham_ros.geometry.frames import Transform
from wham_ros.model import build_network
from wham_ros.model.synthetic import make_test_state_dict, write_body_model
from wham_ros.perception.base import Detection
from wham_ros.perception.tracker import TrackState
from wham_ros.pipeline import PersonResult
from wham_ros.ros import messages as M
from wham_ros.ros.convert import compressed_to_rgb, image_to_rgb
from wham_ros.stream import FrameInput, StreamEngine, TrackInit


def people(net, n: int) -> list[PersonResult]:
    """n people with real engine outputs (synthetic weights), placed with a camera pose."""
    from wham_ros.geometry.frames import place_with_camera_pose
    from wham_ros.geometry.rotations import rot6d_to_matrix

    engine = StreamEngine(net)
    out = []
    for k in range(n):
        root = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
        init_smpl = torch.cat((root[None], torch.eye(3).expand(23, 3, 3)))
        engine.add_track(k, TrackInit(torch.randn(88) * 0.3, torch.cat((init_smpl[:, 0], init_smpl[:, 1]), -1),
                                      torch.tensor([1.0, 0, 0, 0, -1, 0])))
    frames = {k: FrameInput(torch.rand(37), torch.zeros(17, dtype=torch.bool), torch.zeros(6),
                            torch.tensor([320.0, 240.0, 1.5]), 800.0, torch.tensor([640.0, 480.0]),
                            torch.randn(1024)) for k in range(n)}
    pose = Transform(np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]]), np.array([0.0, 0, 1.2]))
    for k, o in engine.step(frames).outputs.items():
        world = place_with_camera_pose(o.poses_root_cam.double().numpy(), o.trans_cam.double().numpy(),
                                       rot6d_to_matrix(o.pose_root_refined.double()).numpy(), pose)
        det = Detection(np.concatenate((np.random.rand(17, 2) * 400, np.ones((17, 1))), 1),
                        np.array([100.0, 50, 300, 450]))
        out.append(PersonResult(k, TrackState.TRACKED, 10, 0.0, det, o, world, np.zeros(3), np.eye(3) * 0.01))
    return out


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        net = build_network(make_test_state_dict(0), write_body_model(tmp))
    rgb = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    img = Image(height=480, width=640, encoding="bgr8", step=640 * 3, data=rgb.tobytes())
    _, jpeg = cv2.imencode(".jpg", rgb)
    comp = CompressedImage(format="jpeg", data=jpeg.tobytes())
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}; medians of 30 runs")
    print(f"  Image bgr8 640x480 -> RGB array: {median_ms(lambda: image_to_rgb(img)):.2f} ms")
    print(f"  CompressedImage JPEG 640x480 -> RGB array: {median_ms(lambda: compressed_to_rgb(comp)):.2f} ms")
    header = Header(frame_id="odom")
    faces = M.decimated_faces(net.smpl.faces_tensor.numpy(), 1000)
    for n in (1, 5):
        crowd = people(net, n)

        def humans(mesh: bool = False, crowd=crowd):
            msgs = [M.human_message(p, "odom", True, M.world_vertices(net.smpl, p) if mesh else None) for p in crowd]
            serialize_message(M.human_array(header, "camera_optical", msgs))
            serialize_message(TFMessage(transforms=[M.body_transform(p, header, "odom") for p in crowd]))

        def markers(crowd=crowd):
            ms = []
            for p in crowd:
                ms += M.person_markers(p, header, "odom", M.world_vertices(net.smpl, p), faces, 0.5)
            serialize_message(M.marker_array(ms))

        base, mesh, mk = median_ms(humans), median_ms(lambda: humans(True)), median_ms(markers, 10)
        print(f"  {n} person(s): HumanArray + /tf {base:.2f} ms ({base / n:.2f}/person); "
              f"with vertices_world {mesh:.2f} ms ({mesh / n:.2f}/person); "
              f"markers (1000-face mesh + skeleton) {mk:.2f} ms ({mk / n:.2f}/person)")


if __name__ == "__main__":
    main()
