"""The node's parameters: one table that declares them, documents them and checks config/wham.yaml."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    low: float | None = None         # numeric range, inclusive
    high: float | None = None
    choices: tuple[str, ...] = ()


PARAMS: tuple[Param, ...] = (
    # model
    Param("checkpoint", "", "path of a WHAM checkpoint (.pth.tar: official or trained by wham-ros train); empty: "
          "the embedded model wham_ros ships (trained here on free mocap for the free body, CC BY-SA 3.0)"),
    Param("body_model_dir", "", "folder with smpl/SMPL_NEUTRAL.pkl and the J_regressor_*.npy files (e.g. the "
          "official SMPL ones); empty: the free body model install.sh builds ($WHAM_ROS_BODY_MODEL overrides where)"),
    Param("device", "cpu", "torch device for the network", choices=("cpu", "cuda")),
    Param("precision", "fp32", "recurrent step weights: fp32 (exact) or fp16", choices=("fp32", "fp16")),
    Param("torch_threads", 1, "torch intra-op threads (1 is fastest for one or two people on small CPUs)", 1, 64),
    Param("flip_eval", False, "also run the mirrored pass and average (the official demo default; 2x network cost)"),
    # perception
    Param("front_end", "embedded", "person/keypoint front end: embedded = MediaPipe BlazePose (no downloads); "
          "official = YOLOv8 + ViTPose-H from the checkpoints below",
          choices=("embedded", "official")),
    Param("yolo_checkpoint", "", "official front end: path of yolov8x.pt (or an exported state_dict)"),
    Param("vitpose_checkpoint", "", "official front end: path of vitpose-h-multi-coco.pth"),
    Param("hmr2_checkpoint", "", "path of hmr2a.ckpt: image features and each track's first body, with either "
          "front end; empty runs WHAM without image features"),
    Param("detector_confidence", 0.5, "official front end: least YOLO person score (the demo's 0.5)", 0.0, 1.0),
    Param("vitpose_flip_test", True, "official front end: average ViTPose over the mirrored crop (as the demo)"),
    Param("pose_tiles", 2, "embedded front end: overlapping windows along the longer image side, each tracked "
          "by its own BlazePose (2 finds small, edge and crowded people a whole-image pass misses; 1 halves the cost)",
          1, 4),
    Param("max_tracks", 8, "most people tracked at once", 1, 64),
    Param("birth_frames", 3, "consecutive detections before a person is published as tracked", 1, 30),
    Param("max_missed_frames", 30, "frames a person may be unseen (occluded, missed) before the track ends; "
          "also as time at 30 Hz (30: 1 s), so a node that processes few frames keeps no lost track longer",
          0, 300),
    Param("box_window", 5, "causal median window of the person box (frames)", 1, 31),
    Param("keypoint_smoothing", True, "one-euro filter on each track's keypoints (the official tracker's)"),
    Param("use_camera_info_intrinsics", True,
          "use CameraInfo's focal length and principal point (False: the official sqrt(W^2+H^2), image centre)"),
    # inputs
    Param("use_compressed", False, "subscribe to sensor_msgs/CompressedImage on image/compressed instead of image"),
    Param("max_image_age", 0.5, "drop images older than this (s, against the node clock); 0 disables", 0.0, 3600.0),
    Param("time_jump_threshold", 0.5, "a stamp this far (s) behind the last one resets all tracks", 0.0, 3600.0),
    Param("future_tolerance", 1.0, "images, IMU samples and TF stamped further (s) ahead of the node clock are "
          "rejected (raise it for a camera whose clock runs ahead)", 0.0, 3600.0),
    Param("max_image_pixels", 4096 * 4096, "largest image (width x height) accepted; a larger one, raw or "
          "compressed (read from its header before decoding), is rejected as a bad image", 1, 1 << 28),
    Param("image_qos_reliability", "best_effort", "QoS reliability of the image subscription",
          choices=("best_effort", "reliable")),
    Param("image_qos_depth", 2, "QoS depth of the image subscription", 1, 100),
    Param("imu_qos_reliability", "best_effort", "QoS reliability of the IMU subscription",
          choices=("best_effort", "reliable")),
    Param("imu_qos_depth", 1000, "QoS depth of the IMU subscription (5 s of a 200 Hz gyro)", 1, 10000),
    Param("imu_wait", 0.05, "how long (s) to wait for IMU samples to reach an image's stamp", 0.0, 1.0),
    Param("imu_max_gap", 0.05, "longest gap (s) between IMU samples that still counts as coverage", 0.001, 1.0),
    Param("camera_rotation", "auto", "source of the camera rotation between frames: auto = gyro, else TF, else the "
          "visual estimate, else static; or only one of them (use visual for electronically stabilised cameras)",
          choices=("auto", "gyro", "tf", "visual", "static")),
    Param("visual_rotation_max_gap", 0.5, "longest time (s) between two processed frames the visual rotation "
          "tracks features across (a slower pipeline gets no visual rotation)", 0.05, 5.0),
    Param("camera_frame", "", "optical frame of the camera; empty: the image header's frame_id"),
    # outputs
    Param("world_frame", "odom", "frame every person is published in when TF world->camera exists (REP-105)"),
    Param("tf_tolerance", 0.1, "how far (s) TF may be extrapolated to the image stamp", 0.0, 5.0),
    Param("publish_tf", True, "broadcast body_<id> frames on /tf (REP-155)"),
    Param("publish_mesh", False, "fill Human.vertices_world (V x 3 floats per person: 6000 vertices for the free "
          "body, 6890 for SMPL)"),
    Param("marker_rate", 10.0, "Hz of humans/markers (mesh + skeleton); 0 disables; only sent with subscribers",
          0.0, 100.0),
    Param("marker_faces", 1000, "triangles per mesh marker (a fixed subset of the body model's faces, all of "
          "them if it has fewer)", 100, 100000),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", 0.1, 60.0),
)

BY_NAME = {p.name: p for p in PARAMS}
