#!/usr/bin/env python3
"""End to end over real DDS, fed like a live camera: throughput, latency and drops of wham_node.

    .venv/bin/python bench/bench_end_to_end.py [--seconds 20] [--people 1|2] [--size 640x480|640x1138]
        [--rate 30] [--imu-rate 200] [--no-tf] [--tiles N] [--profile OUT.svg] [--embedded]

Starts ``wham_node`` with its shipped ``config/wham.yaml`` defaults (embedded MediaPipe front end,
WHAM with synthetic weights of the official size, or with ``--embedded`` the embedded model on the free
body, 1 torch thread) in its own process and, from this
process, publishes what a robot's camera driver and IMU publish: per frame an Image (frames of the
sports2d clip, played back and forth; landscape letterboxed, portrait a 9:16 crop around one
person), a CameraInfo and a /tf odom -> camera_optical, a static camera_optical -> imu extrinsic, and
a gyro at ``--imu-rate`` Hz (a slowly turning camera) from its own thread. Measures the rate of
HumanArray messages, the latency from image stamp to arrival, and the share of frames the node
dropped. ``--profile`` records the node with py-spy (if installed). Prints figures only.
"""
from __future__ import annotations

import argparse
import os
import shutil
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
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, Imu
from tf2_msgs.msg import TFMessage

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wham_ros.msg import HumanArray

from wham_ros.model.synthetic import make_test_state_dict, write_body_model

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.environ.get("WHAM_ROS_SHARED", os.path.join(ROOT, "..", "shared"))
CLIP = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")
#: the man on the box in frames 0-35 of the clip (1768x994) stands in this column
PORTRAIT_COLUMN = (360, 919)
CAMERA = "camera_optical"


def clip_frames(first: int, last: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Frames first..last of the clip as RGB of ``size``, then played backwards (a seamless loop).

    Landscape sizes letterbox the whole frame; portrait sizes crop a 9:16 column around the man.
    """
    cap = cv2.VideoCapture(CLIP)
    out, index = [], 0
    w, h = size
    while index <= last:
        ok, bgr = cap.read()
        if not ok:
            break
        if index >= first:
            if h > w:
                x0, x1 = PORTRAIT_COLUMN
                frame = cv2.resize(bgr[:, x0:x1], size, interpolation=cv2.INTER_AREA)
            else:
                fh = round(w * bgr.shape[0] / bgr.shape[1])
                small = cv2.resize(bgr, (w, fh), interpolation=cv2.INTER_AREA)
                top = (h - fh) // 2
                frame = cv2.copyMakeBorder(small, top, h - fh - top, 0, 0, cv2.BORDER_CONSTANT)
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        index += 1
    return out + out[-2:0:-1]


def transform(parent: str, child: str, stamp, xyz, xyzw) -> TransformStamped:
    tf = TransformStamped()
    tf.header.stamp, tf.header.frame_id, tf.child_frame_id = stamp, parent, child
    t, r = tf.transform.translation, tf.transform.rotation
    t.x, t.y, t.z = xyz
    r.x, r.y, r.z, r.w = xyzw
    return tf


def node_diagnostics(node, values: dict) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("/wham_node"):
                values.clear()
                values.update({v.key: v.value for v in status.values}, level=status.level, message=status.message)

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--people", type=int, choices=(1, 2), default=1)
    parser.add_argument("--size", default="640x480", help="WxH; taller than wide crops a portrait view (1 person)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera frame rate (Hz)")
    parser.add_argument("--imu-rate", type=float, default=200.0, help="gyro rate (Hz); 0: no IMU")
    parser.add_argument("--no-tf", action="store_true", help="publish no TF (world anchoring off)")
    parser.add_argument("--tiles", type=int, default=None, help="the node's pose_tiles (default: config/wham.yaml)")
    parser.add_argument("--profile", default="", help="record the node with py-spy into this SVG")
    parser.add_argument("--embedded", action="store_true", help="the shipped defaults: the embedded model on the "
                        "free body (default: generated official-size weights on a generated SMPL-size body)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    portrait = size[1] > size[0]
    if portrait and args.people == 2:
        sys.exit("the portrait view holds one person")
    frames = clip_frames(0, 35, size) if args.people == 1 else clip_frames(60, 160, size)
    with tempfile.TemporaryDirectory() as tmp:
        write_body_model(os.path.join(tmp, "body"))
        torch.save({"model": make_test_state_dict(0)}, os.path.join(tmp, "wham.pth.tar"))
        params = os.path.join(tmp, "params.yaml")
        with open(params, "w") as f:
            f.write("/**:\n  ros__parameters:\n"
                    + ("    checkpoint: \"\"\n    body_model_dir: \"\"\n" if args.embedded else
                       f"    checkpoint: \"{tmp}/wham.pth.tar\"\n    body_model_dir: \"{tmp}/body\"\n")
                    + (f"    pose_tiles: {args.tiles}\n" if args.tiles else ""))
        log = open(os.path.join(tmp, "node.log"), "w")
        command = [sys.executable, "-m", "wham_ros.ros.node", "--ros-args", "--params-file",
                   os.path.join(ROOT, "config", "wham.yaml"), "--params-file", params]
        if args.profile:
            spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
            fmt = "raw" if args.profile.endswith(".txt") else "flamegraph"
            command = [spy, "record", "--threads", "-f", fmt, "-o", args.profile, "-r", "50", "--", *command]
        node_proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        rclpy.init()
        node = rclpy.create_node("bench_end_to_end")
        sensor = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
        image_pub = node.create_publisher(Image, "image", sensor)
        info_pub = node.create_publisher(CameraInfo, "camera_info", sensor)
        imu_pub = node.create_publisher(Imu, "imu", QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
        tf_pub = node.create_publisher(TFMessage, "/tf", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        tf_static = node.create_publisher(TFMessage, "/tf_static", QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        received: list[tuple[float, float, int]] = []      # (arrival, stamp, people)
        diagnostics: dict = {}
        node_diagnostics(node, diagnostics)

        def on_humans(msg: HumanArray) -> None:
            received.append((time.time(), msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, len(msg.humans)))

        node.create_subscription(HumanArray, "humans", on_humans, 50)
        deadline = time.time() + 180
        while time.time() < deadline and not (node.count_publishers("humans") and node.count_subscribers("image")):
            rclpy.spin_once(node, timeout_sec=0.1)
        now_msg = lambda: rclpy.time.Time(nanoseconds=time.time_ns()).to_msg()
        tf_static.publish(TFMessage(transforms=[transform(CAMERA, "imu", now_msg(), (0.0, 0.0, 0.0),
                                                          (0.0, 0.0, 0.0, 1.0))]))
        sent: list[float] = []
        stop = threading.Event()
        level_camera = (-0.5, 0.5, -0.5, 0.5)          # odom <- optical: a level camera looking along +x

        def publish_frames() -> None:
            k, period, start = 0, 1.0 / args.rate, time.time()
            while not stop.is_set():
                rgb = frames[k % len(frames)]
                stamp = now_msg()
                msg = Image(height=size[1], width=size[0], encoding="rgb8", step=size[0] * 3, data=rgb.tobytes())
                msg.header.stamp, msg.header.frame_id = stamp, CAMERA
                f = 0.5 * float(np.hypot(*size))
                info = CameraInfo(width=size[0], height=size[1], k=[f, 0, size[0] / 2, 0, f, size[1] / 2, 0, 0, 1])
                info.header = msg.header
                if not args.no_tf:
                    tf_pub.publish(TFMessage(transforms=[transform("odom", CAMERA, stamp, (0.0, 0.0, 1.2),
                                                                   level_camera)]))
                info_pub.publish(info)
                image_pub.publish(msg)
                sent.append(time.time())
                k += 1
                time.sleep(max(0.0, start + k * period - time.time()))

        def publish_imu() -> None:
            k, period, start = 0, 1.0 / args.imu_rate, time.time()
            while not stop.is_set():
                imu = Imu()
                imu.header.stamp, imu.header.frame_id = now_msg(), "imu"
                imu.angular_velocity.y = 0.05 * np.sin(0.5 * k * period)
                imu.linear_acceleration.y = -9.81
                imu_pub.publish(imu)
                k += 1
                time.sleep(max(0.0, start + k * period - time.time()))

        warmup = 3.0
        threads = [threading.Thread(target=publish_frames, daemon=True)]
        if args.imu_rate > 0:
            threads.append(threading.Thread(target=publish_imu, daemon=True))
        for thread in threads:
            thread.start()
        end = time.time() + warmup + args.seconds
        while time.time() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
        final = dict(diagnostics)
        stop.set()
        for thread in threads:
            thread.join()
        node_proc.send_signal(2)
        node_proc.wait(timeout=60)
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
    print(f"machine: {os.cpu_count()} cores; {args.people} person clip at {size[0]}x{size[1]}, camera "
          f"{args.rate:g} Hz + CameraInfo per frame, IMU {args.imu_rate:g} Hz, TF {'off' if args.no_tf else 'on'}; "
          f"pose_tiles {args.tiles or 'default'}; {args.seconds:g} s after {warmup:g} s warm-up")
    print(f"  images sent {sent_n}, HumanArray received {len(window)} ({len(window) / max(span, 1e-9):.1f} Hz, "
          f"{100 * len(window) / max(sent_n, 1):.0f} % of frames), {with_people} with people")
    print(f"  latency image stamp -> HumanArray: median {statistics.median(lat):.1f} ms, p95 {p95:.1f} ms, "
          f"max {lat[-1]:.1f} ms")
    if final:
        keys = ("camera_rotation", "world", "dropped_busy", "dropped_stale", "imu rate (Hz)", "processed rate (Hz)")
        print("  node diagnostics: " + ", ".join(f"{k} {final[k]}" for k in keys if k in final)
              + f"; message: {final.get('message', '')}")


if __name__ == "__main__":
    main()
