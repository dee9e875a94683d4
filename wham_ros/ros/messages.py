"""Build the node's output messages (HumanArray, TF, markers, diagnostics) from pipeline results."""
from __future__ import annotations

import array
from dataclasses import dataclass

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, TransformStamped
from std_msgs.msg import ColorRGBA, Header
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from wham_ros.geometry.frames import rotation_to_quaternion_xyzw
from wham_ros.geometry.rotations import matrix_to_axis_angle
from wham_ros.msg import Human, HumanArray
from wham_ros.offline.render import track_colour
from wham_ros.pipeline import PersonResult

#: parent of each of the 31 WHAM joints for skeleton lines (COCO-17 part; -1 = none)
COCO_EDGES = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14),
              (14, 16), (0, 1), (0, 2), (1, 3), (2, 4))


def fallback_world_frame(track_id: int) -> str:
    return f"wham_world_{track_id}"


def body_frame(track_id: int) -> str:
    """REP-155 name of a person's body frame."""
    return f"body_{track_id}"


def _pose(R: np.ndarray, t: np.ndarray) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in t)
    q = rotation_to_quaternion_xyzw(R)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def person_world_frame(person: PersonResult, world_frame: str, anchored: bool) -> str:
    return world_frame if anchored else fallback_world_frame(person.track_id)


def human_message(person: PersonResult, world_frame: str, anchored: bool,
                  vertices_world: np.ndarray | None = None) -> Human:
    """Human message of one person; ``anchored``: the world is the TF world frame (else the person's own)."""
    det = person.detection
    h = Human(id=int(person.track_id), state=int(person.state), age=int(person.age),
              time_since_seen=float(person.time_since_seen))
    h.world_frame_id = person_world_frame(person, world_frame, anchored)
    h.bbox[:] = np.asarray(det.bbox, dtype=np.float32)
    h.keypoints[:] = np.asarray(det.keypoints[:, :2], dtype=np.float32).reshape(-1)
    h.keypoint_scores[:] = np.asarray(det.keypoints[:, 2], dtype=np.float32)
    out, world = person.output, person.world
    if out is None or world is None:
        return h
    h.body_pose[:] = matrix_to_axis_angle(out.poses_body.double()).numpy().reshape(-1).astype(np.float32)
    h.betas[:] = out.betas.numpy().astype(np.float32)
    root_cam = out.poses_root_cam.double().numpy()
    trans_cam = out.trans_cam.double().numpy()
    h.root_camera = _pose(root_cam, trans_cam)
    h.root_world = _pose(world.smpl_R, world.position)
    h.linear_velocity.x, h.linear_velocity.y, h.linear_velocity.z = (float(v) for v in person.velocity)
    h.linear_velocity_covariance[:] = person.velocity_cov.reshape(-1)
    h.foot_contact[:] = out.contact.numpy().astype(np.float32)
    joints_cam = out.joints.double().numpy() + trans_cam
    h.joints_camera[:] = joints_cam.reshape(-1).astype(np.float32)
    joints_world = hip_centred_to_world(person, out.joints.double().numpy())
    h.joints_world[:] = joints_world.reshape(-1).astype(np.float32)
    if vertices_world is not None:
        h.vertices_world = array.array("f", np.ascontiguousarray(vertices_world, dtype=np.float32).tobytes())
    return h


def hip_centred_to_world(person: PersonResult, points: np.ndarray) -> np.ndarray:
    """Hip-centred points in camera orientation (WHAM's joints, vertices) (N, 3) -> the person's world frame."""
    rotation = person.world.smpl_R @ person.output.poses_root_cam.double().numpy().T
    return points @ rotation.T + person.world.position


def world_vertices(body_model, person: PersonResult) -> np.ndarray:
    """Mesh of a person in its world frame (V, 3), from the published pose and shape."""
    out = person.output
    with torch.no_grad():
        verts = body_model.get_output(out.poses_root_cam[None, None].to(body_model.v_template),
                                      out.poses_body[None].to(body_model.v_template),
                                      out.betas[None].to(body_model.v_template)).vertices[0].cpu().double().numpy()
    return hip_centred_to_world(person, verts)


def human_array(header: Header, camera_frame: str, humans: list[Human]) -> HumanArray:
    return HumanArray(header=header, camera_frame_id=camera_frame, humans=humans)


def body_transform(person: PersonResult, header: Header, parent: str) -> TransformStamped:
    tf = TransformStamped()
    tf.header.stamp = header.stamp
    tf.header.frame_id = parent
    tf.child_frame_id = body_frame(person.track_id)
    tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = (
        float(v) for v in person.world.position)
    q = rotation_to_quaternion_xyzw(person.world.body_R)
    r = tf.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return tf


def _colour(track_id: int) -> ColorRGBA:
    # the palette of the overlay video and the trajectory plot, so a person has one colour everywhere
    r, g, b = track_colour(track_id)
    return ColorRGBA(r=r, g=g, b=b, a=1.0)


def _points(xyz: np.ndarray) -> list[Point]:
    # attribute assignment on default-constructed Points is the cheapest way to build thousands of them
    points = []
    for x, y, z in np.asarray(xyz, dtype=np.float64).tolist():
        p = Point()
        p.x, p.y, p.z = x, y, z
        points.append(p)
    return points


def person_markers(person: PersonResult, header: Header, frame: str, vertices: np.ndarray, faces: np.ndarray,
                   lifetime: float) -> list[Marker]:
    """An opaque TRIANGLE_LIST mesh (``faces``: the decimated subset) and a LINE_LIST skeleton."""
    life_sec = int(lifetime)
    life_ns = int((lifetime - life_sec) * 1e9)
    mesh = Marker(ns="wham_mesh", id=int(person.track_id), type=Marker.TRIANGLE_LIST, action=Marker.ADD)
    mesh.header.stamp, mesh.header.frame_id = header.stamp, frame
    mesh.pose.orientation.w = 1.0
    mesh.scale.x = mesh.scale.y = mesh.scale.z = 1.0
    mesh.color = _colour(person.track_id)
    mesh.lifetime.sec, mesh.lifetime.nanosec = life_sec, life_ns
    mesh.points = _points(vertices[faces.reshape(-1)])
    joints_world = hip_centred_to_world(person, person.output.joints.double().numpy())
    skeleton = Marker(ns="wham_skeleton", id=int(person.track_id), type=Marker.LINE_LIST, action=Marker.ADD)
    skeleton.header = mesh.header
    skeleton.pose.orientation.w = 1.0
    skeleton.scale.x = 0.03
    skeleton.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    skeleton.lifetime = mesh.lifetime
    skeleton.points = _points(joints_world[np.array(COCO_EDGES).reshape(-1)])
    return [mesh, skeleton]


def marker_array(markers: list[Marker]) -> MarkerArray:
    return MarkerArray(markers=markers)


def decimated_faces(faces: np.ndarray, count: int) -> np.ndarray:
    """A fixed, evenly spread subset of ``count`` triangles (the same every frame)."""
    if count >= len(faces):
        return faces
    return faces[np.linspace(0, len(faces) - 1, count).round().astype(np.int64)]


@dataclass
class FrameMessages:
    """Everything the node publishes for one image (besides diagnostics and ROS4HRI ids).

    humans: the HumanArray (always, possibly without people); tf: body_<id> transforms, None when no
    person has an estimate (or TF output is off); markers: mesh and skeleton markers, None unless
    requested (an empty array when requested but nobody has an estimate, which lets markers expire).
    """

    humans: HumanArray
    tf: TFMessage | None
    markers: MarkerArray | None


def frame_messages(people: list[PersonResult], header: Header, camera_frame: str, world_frame: str, anchored: bool,
                   body_model, faces: np.ndarray, *, mesh: bool, markers: bool, tf: bool,
                   marker_lifetime: float = 0.5) -> FrameMessages:
    """The messages of one image's people, as the node builds them.

    header: stamp = the image's stamp, frame_id = ``world_frame`` when ``anchored`` (TF world -> camera
    known at that stamp) else "" (each person's own ``wham_world_<id>``). body_model: the pipeline's
    (``net.smpl``), posed for meshes; faces (F, 3): the marker triangles (``decimated_faces``).
    mesh: fill ``vertices_world`` (V x 3 floats, metres, world frame); markers / tf: build those messages.
    """
    humans, transforms, marker_list = [], [], []
    for person in people:
        verts = world_vertices(body_model, person) if person.output is not None and (mesh or markers) else None
        humans.append(human_message(person, world_frame, anchored, verts if mesh else None))
        if person.output is None:
            continue
        frame = person_world_frame(person, world_frame, anchored)
        if tf:
            transforms.append(body_transform(person, header, frame))
        if markers:
            marker_list += person_markers(person, header, frame, verts, faces, lifetime=marker_lifetime)
    return FrameMessages(human_array(header, camera_frame, humans),
                         TFMessage(transforms=transforms) if transforms else None,
                         marker_array(marker_list) if markers else None)


def diagnostics(header: Header, name: str, level: int, message: str, values: dict[str, object]) -> DiagnosticArray:
    status = DiagnosticStatus(level=bytes([level]), name=name, message=message, hardware_id="wham_ros")
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    return DiagnosticArray(header=header, status=[status])


LEVEL_OK, LEVEL_WARN, LEVEL_ERROR = (int.from_bytes(b, "little") for b in
                                     (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR))
