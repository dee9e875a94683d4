#!/usr/bin/env python3
"""End to end over real DDS: camera frames at 30 Hz in, HumanArray out; throughput and latency.

    .venv/bin/python bench/bench_end_to_end.py [--seconds 20] [--people 1|2] [--tiles 2]

Starts ``wham_node`` (embedded MediaPipe front end, WHAM with synthetic weights of the real
size, 1 torch thread) in its own process, publishes 640x480 frames of the sports2d clip
(letterboxed; 1 person: the first 36 frames, 2 people: frames 60-160, played back and forth)
stamped with the publish time, and measures the rate of HumanArray messages and the latency
from image stamp to HumanArray arrival. Prints figures only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np
import rclpy
import torch
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wham_ros.msg import HumanArray

from wham_ros.model.synthetic import make_test_state_dict, write_body_model

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

SHARED = os.environ.get("WHAM_ROS_SHARED", os.path.join(ROOT, "..", "shared"))
CLIP = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")
SIZE = (640, 480)


def clip_frames(first: int, last: int) -> list[np.ndarray]:
    """Frames first..last of the clip letterboxed to 640x480 RGB, then played backwards (a seamless loop)."""
    cap = cv2.VideoCapture(CLIP)
    out, index = [], 0
    while index <= last:
        ok, bgr = cap.read()
        if not ok:
            break
        if index >= first:
            h = round(SIZE[0] * bgr.shape[0] / bgr.shape[1])
            small = cv2.resize(bgr, (SIZE[0], h), interpolation=cv2.INTER_AREA)
            top = (SIZE[1] - h) // 2
            frame = cv2.copyMakeBorder(small, top, SIZE[1] - h - top, 0, 0, cv2.BORDER_CONSTANT)
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        index += 1
    return out + out[-2:0:-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--people", type=int, choices=(1, 2), default=1)
    parser.add_argument("--rate", type=float, default=30.0, help="camera frame rate (Hz)")
    parser.add_argument("--tiles", type=int, default=2, help="the node's pose_tiles")
    args = parser.parse_args()
    frames = clip_frames(0, 35) if args.people == 1 else clip_frames(60, 160)
    with tempfile.TemporaryDirectory() as tmp:
        write_body_model(os.path.join(tmp, "body"))
        torch.save({"model": make_test_state_dict(0)}, os.path.join(tmp, "wham.pth.tar"))
        params = os.path.join(tmp, "params.yaml")
        with open(params, "w") as f:
            f.write("/**:\n  ros__parameters:\n"
                    f"    checkpoint: \"{tmp}/wham.pth.tar\"\n    body_model_dir: \"{tmp}/body\"\n"
                    "    image_qos_reliability: reliable\n    marker_rate: 0.0\n"
                    f"    pose_tiles: {args.tiles}\n")
        log = open(os.path.join(tmp, "node.log"), "w")
        node_proc = subprocess.Popen([sys.executable, "-m", "wham_ros.ros.node", "--ros-args", "--params-file",
                                      params], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        rclpy.init()
        node = rclpy.create_node("bench_end_to_end")
        reliable = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        image_pub = node.create_publisher(Image, "image", reliable)
        info_pub = node.create_publisher(CameraInfo, "camera_info", 5)
        received: list[tuple[float, float, int]] = []      # (arrival, stamp, people)

        def on_humans(msg: HumanArray) -> None:
            received.append((time.time(), msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, len(msg.humans)))

        node.create_subscription(HumanArray, "humans", on_humans, 50)
        deadline = time.time() + 120
        while time.time() < deadline and not (node.count_publishers("humans") and node.count_subscribers("image")):
            rclpy.spin_once(node, timeout_sec=0.1)
        sent = []
        stop = threading.Event()

        def publish() -> None:
            k, period, start = 0, 1.0 / args.rate, time.time()
            while not stop.is_set():
                rgb = frames[k % len(frames)]
                now = time.time()
                stamp = rclpy.time.Time(nanoseconds=int(now * 1e9)).to_msg()
                msg = Image(height=SIZE[1], width=SIZE[0], encoding="rgb8", step=SIZE[0] * 3, data=rgb.tobytes())
                msg.header.stamp, msg.header.frame_id = stamp, "camera_optical"
                info = CameraInfo(width=SIZE[0], height=SIZE[1], k=[800.0, 0, 320, 0, 800.0, 240, 0, 0, 1])
                info.header = msg.header
                info_pub.publish(info)
                image_pub.publish(msg)
                sent.append(now)
                k += 1
                time.sleep(max(0.0, start + k * period - time.time()))

        warmup = 3.0
        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        end = time.time() + warmup + args.seconds
        while time.time() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
        stop.set()
        thread.join()
        node_proc.terminate()
        node_proc.wait(timeout=20)
        node.destroy_node()
        rclpy.shutdown()
    t0 = sent[0] + warmup
    window = [r for r in received if r[1] >= t0]
    sent_n = sum(1 for s in sent if s >= t0)
    if not window:
        sys.exit("no HumanArray received: see the node log")
    lat = sorted((arrival - stamp) * 1e3 for arrival, stamp, _ in window)
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    span = window[-1][1] - window[0][1]
    with_people = sum(1 for r in window if r[2] > 0)
    print(f"machine: {os.cpu_count()} cores; {args.people} person clip at 640x480, pose_tiles {args.tiles}, "
          f"camera {args.rate:.0f} Hz, "
          f"{args.seconds:.0f} s after {warmup:.0f} s warm-up")
    print(f"  images sent {sent_n}, HumanArray received {len(window)} ({len(window) / max(span, 1e-9):.1f} Hz), "
          f"{with_people} with people")
    print(f"  latency image stamp -> HumanArray: median {statistics.median(lat):.1f} ms, p95 {p95:.1f} ms, "
          f"max {lat[-1]:.1f} ms")


if __name__ == "__main__":
    main()
