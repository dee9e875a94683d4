"""The pipeline the node parameters describe, built the same way for the node and for ``wham-ros run``.

``param(name)`` reads one parameter of :mod:`wham_ros.ros.params` (the node's ``get_parameter``, or
:func:`defaults_with` for the offline tools), so a parameter means the same thing everywhere.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from wham_ros.errors import WhamError
from wham_ros.model import build_network
from wham_ros.perception.base import PoseEstimator
from wham_ros.perception.hmr2 import HMR2Estimator
from wham_ros.perception.tracker import Tracker
from wham_ros.pipeline import TRAIN_FPS, HumanPipeline
from wham_ros.ros.params import BY_NAME
from wham_ros.session import SessionConfig

Param = Callable[[str], object]


def defaults_with(overrides: Mapping[str, object]) -> Param:
    """A ``param`` reader: ``overrides`` over the node's defaults; an unknown name is an error."""
    unknown = sorted(set(overrides) - set(BY_NAME))
    if unknown:
        raise WhamError(f"unknown parameters: {', '.join(unknown)}")
    for name, value in overrides.items():
        spec = BY_NAME[name]
        if spec.choices and value not in spec.choices:
            raise WhamError(f"{name}={value!r} must be one of {', '.join(spec.choices)}")
    return lambda name: overrides[name] if name in overrides else BY_NAME[name].default


#: path parameters whose value ``official`` means the file ``wham-ros fetch-official`` installed
OFFICIAL_PARAMS = ("checkpoint", "body_model_dir", "yolo_checkpoint", "vitpose_checkpoint", "hmr2_checkpoint")
OFFICIAL = "official"


def resolve_official(param: Param) -> Param:
    """``param`` with every path parameter set to ``official`` replaced by the fetched file's path."""
    from wham_ros.fetch import NODE_PARAMS, official_dir, official_paths

    wanted = [name for name in OFFICIAL_PARAMS if param(name) == OFFICIAL]
    if not wanted:
        return param
    found = official_paths()
    paths = {}
    for name in wanted:
        key = NODE_PARAMS[name]
        if key not in found:
            raise WhamError(f"{name}: 'official' means {key} from wham-ros fetch-official, which is not in "
                            f"{official_dir()} (run: wham-ros fetch-official --accept-licences"
                            + (", and --smpl FILE for SMPL" if name == "body_model_dir" else "") + ")")
        paths[name] = found[key]
    return lambda name: paths.get(name, param(name))


def make_estimator(param: Param) -> PoseEstimator:
    """The front end the parameters ask for."""
    kind = param("front_end")
    if kind == "embedded":
        from wham_ros.perception.mediapipe_pose import MediaPipePose

        return MediaPipePose(max_people=int(param("max_tracks")), tiles=int(param("pose_tiles")))
    if kind == "official":
        if not param("yolo_checkpoint") or not param("vitpose_checkpoint"):
            raise WhamError("front_end 'official' needs the parameters 'yolo_checkpoint' and 'vitpose_checkpoint'")
        from wham_ros.perception.official import OfficialFrontEnd

        return OfficialFrontEnd.from_checkpoints(
            param("yolo_checkpoint"), param("vitpose_checkpoint"), device=param("device"),
            detector_conf=float(param("detector_confidence")), flip_test=bool(param("vitpose_flip_test")),
            max_people=int(param("max_tracks")))
    raise WhamError(f"front_end {kind!r} is unknown (use 'embedded' or 'official')")


def make_feature_extractor(param: Param) -> HMR2Estimator | None:
    """HMR2.0 from ``hmr2_checkpoint`` (any front end), or None: WHAM then runs without image features."""
    path = param("hmr2_checkpoint")
    return HMR2Estimator.from_checkpoint(path, param("device")) if path else None


def make_pipeline(param: Param) -> HumanPipeline:
    """Network (checkpoint empty: the embedded model), front end (warmed up), tracker, features -> pipeline.

    A path parameter set to ``official`` is the file ``wham-ros fetch-official`` installed."""
    param = resolve_official(param)
    net = build_network(param("checkpoint"), param("body_model_dir"), device=param("device"),
                        precision=param("precision"))
    estimator = make_estimator(param)
    warm_up = getattr(estimator, "warm_up", None)
    if callable(warm_up):      # set-up costs (MediaPipe: 1-3 s) belong before the first image
        warm_up()
    features = make_feature_extractor(param)
    missed = int(param("max_missed_frames"))
    tracker = Tracker(birth_frames=int(param("birth_frames")), max_missed=missed,
                      max_lost_time=missed / TRAIN_FPS, max_tracks=int(param("max_tracks")))
    return HumanPipeline(net, estimator, tracker, box_window=int(param("box_window")),
                         use_camera_intrinsics=bool(param("use_camera_info_intrinsics")),
                         flip_eval=bool(param("flip_eval")), smooth_keypoints=bool(param("keypoint_smoothing")),
                         features=features)


def session_config(param: Param) -> SessionConfig:
    """The :class:`SessionConfig` of the parameters."""
    return SessionConfig(world_frame=str(param("world_frame")), camera_rotation=str(param("camera_rotation")),
                         time_jump_threshold=float(param("time_jump_threshold")),
                         imu_max_gap=float(param("imu_max_gap")), tf_tolerance=float(param("tf_tolerance")),
                         visual_rotation_max_gap=float(param("visual_rotation_max_gap")))
