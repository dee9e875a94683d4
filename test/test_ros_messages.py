"""The package's interfaces, built by rosidl from msg/, on a real ROS 2 middleware."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
from conftest import require_module

rclpy = require_module("rclpy", "ROS 2 (rclpy)")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from wham_ros.msg import Human, HumanArray, MeshTopology  # noqa: E402

PUBLISHER = r"""
import sys, time, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy, DurabilityPolicy
from wham_ros.msg import Human, HumanArray
rclpy.init()
node = rclpy.create_node("test_humans_pub")
qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
pub = node.create_publisher(HumanArray, "humans", qos)
deadline = time.time() + 20
while pub.get_subscription_count() == 0 and time.time() < deadline:
    time.sleep(0.02)
for k in range(int(sys.argv[1])):
    msg = HumanArray()
    msg.header.frame_id = "odom"
    msg.camera_frame_id = "camera_optical_frame"
    h = Human(id=k, state=Human.STATE_TRACKED, age=k + 1)
    h.betas[:] = [0.1 * k] * 10
    h.vertices_world = [float(k)] * (6890 * 3)
    h.root_world.orientation.w = 1.0
    msg.humans = [h]
    pub.publish(msg)
    time.sleep(0.02)
time.sleep(0.5)
node.destroy_node()
rclpy.shutdown()
"""


def test_human_round_trip_through_cdr():
    h = Human(id=3, state=Human.STATE_LOST, age=12, time_since_seen=0.4)
    h.body_pose[:] = np.linspace(-1, 1, 69, dtype=np.float32)
    h.joints_world[:] = np.arange(93, dtype=np.float32)
    h.vertices_world = np.zeros(6890 * 3, dtype=np.float32).tolist()
    arr = HumanArray(camera_frame_id="cam", humans=[h])
    back = deserialize_message(serialize_message(arr), HumanArray)
    assert back.camera_frame_id == "cam" and back.humans[0].id == 3 and back.humans[0].state == Human.STATE_LOST
    np.testing.assert_array_equal(np.asarray(back.humans[0].body_pose), h.body_pose)
    assert len(back.humans[0].vertices_world) == 6890 * 3
    assert len(Human().keypoints) == 34 and len(Human().linear_velocity_covariance) == 9
    topo = MeshTopology(num_vertices=6890, faces=list(range(9)))
    assert list(deserialize_message(serialize_message(topo), MeshTopology).faces) == list(range(9))


def test_human_array_between_processes_over_dds():
    """A separate process publishes HumanArray; this process receives every message, fields intact."""
    rclpy.init()
    node = rclpy.create_node("test_humans_sub")
    got = []
    node.create_subscription(HumanArray, "humans", got.append, 10)
    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, "20"], env=dict(os.environ))
    try:
        deadline = time.time() + 30
        while len(got) < 20 and time.time() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        node.destroy_node()
        rclpy.shutdown()
    assert [m.humans[0].id for m in got] == list(range(20))
    last = got[-1].humans[0]
    assert last.state == Human.STATE_TRACKED and abs(float(last.betas[0]) - 1.9) < 1e-6
    assert len(last.vertices_world) == 6890 * 3 and got[-1].header.frame_id == "odom"


def test_tf_message_scaffolding_is_wire_identical_to_tf2_msgs():
    """The locally generated tf2_msgs/TFMessage has the official type hash, so real tf2 listeners accept /tf."""
    from ament_index_python.packages import get_package_share_directory

    os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    share = get_package_share_directory("tf2_msgs")
    with open(os.path.join(share, "msg", "TFMessage.json")) as fh:
        hashes = [h["hash_string"] for h in json.load(fh)["type_hashes"] if h["type_name"] == "tf2_msgs/msg/TFMessage"]
    assert hashes == ["RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087"]


def test_frame_messages_match_what_the_node_builds(synthetic_net):
    """frame_messages = the node's per-image building blocks, in its order, for every output switch (compared
    as messages: CDR padding bytes are not initialised, so serialised bytes may differ)."""
    from std_msgs.msg import Header
    from test_pipeline import ScriptedPeople

    from wham_ros.perception.tracker import Tracker
    from wham_ros.pipeline import HumanPipeline
    from wham_ros.ros import messages as M

    # two people tracked from frame 0; a third appears in frame 3 and is still tentative (no output) in frame 3
    hidden = {(t, 2) for t in range(3)}
    pipe = HumanPipeline(synthetic_net, ScriptedPeople([(150, 240), (450, 240), (300, 200)], hidden=hidden),
                         Tracker(birth_frames=2))
    for t in range(4):
        people = pipe.process(np.zeros((480, 640, 3), np.uint8), t / 30, np.zeros(6))
    assert sorted(p.output is not None for p in people) == [False, True, True]
    body_model = synthetic_net.smpl
    faces = M.decimated_faces(body_model.faces_tensor.numpy(), 500)
    for anchored in (False, True):
        header = Header(frame_id="odom" if anchored else "")
        header.stamp.sec, header.stamp.nanosec = 12, 345
        for mesh, markers, tf in ((True, True, True), (False, False, False), (False, True, False)):
            got = M.frame_messages(people, header, "cam_optical", "odom", anchored, body_model, faces,
                                   mesh=mesh, markers=markers, tf=tf, marker_lifetime=0.25)
            humans, transforms, marker_list = [], [], []
            for person in people:
                verts = M.world_vertices(body_model, person) if person.output is not None else None
                humans.append(M.human_message(person, "odom", anchored, verts if mesh else None))
                if person.output is not None:
                    frame = M.person_world_frame(person, "odom", anchored)
                    transforms.append(M.body_transform(person, header, frame))
                    marker_list += M.person_markers(person, header, frame, verts, faces, lifetime=0.25)
            assert got.humans == M.human_array(header, "cam_optical", humans)
            assert (got.tf is None) == (not tf) and (got.markers is None) == (not markers)
            if tf:
                assert got.tf == M.TFMessage(transforms=transforms)
                assert [t.child_frame_id for t in got.tf.transforms] == ["body_1", "body_2"]
            if markers:
                assert got.markers == M.marker_array(marker_list)
                assert [m.lifetime.nanosec for m in got.markers.markers] == [250_000_000] * 4
            assert all(len(h.vertices_world) == (3 * body_model.num_vertices if mesh and h.id else 0)
                       for h in got.humans.humans)
