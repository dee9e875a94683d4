"""The results bag: real pipeline results written as MCAP, read back with only the schemas stored in the file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

require_module("rclpy", "ROS 2 (rclpy)")
require_module("rosbags", "rosbags")

import cv2  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.interfaces import MessageDefinitionFormat, QosDurability  # noqa: E402
from rosbags.typesys import Stores, get_types_from_msg, get_typestore  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from test_pipeline import ScriptedPeople  # noqa: E402

from wham_ros.offline.results_bag import (  # noqa: E402
    HUMANS,
    IMAGE,
    MARKERS,
    MESH_FACES,
    TF,
    TOPIC_TYPES,
    ResultsBag,
    ResultsBagError,
)
from wham_ros.perception.tracker import Tracker  # noqa: E402
from wham_ros.pipeline import HumanPipeline  # noqa: E402
from wham_ros.ros import messages as M  # noqa: E402

T0 = 1_700_000_000_000_000_000          # input stamps (ns): a wall-clock-like start, 30 Hz
FRAMES = 5


def _header(stamp_ns: int, frame_id: str) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


@pytest.fixture(scope="module")
def frames(synthetic_net):
    """(stamp in ns, people) of a short clip: two people, the second one hidden in frame 3 (lost there)."""
    pipe = HumanPipeline(synthetic_net, ScriptedPeople([(150, 240), (450, 240)], hidden={(3, 1)}),
                         Tracker(birth_frames=1, max_missed=5))
    out = []
    for k in range(FRAMES):
        stamp = T0 + k * 33_333_333
        out.append((stamp, pipe.process(np.zeros((480, 640, 3), np.uint8), stamp * 1e-9, np.zeros(6))))
    return out


def _write(path, frames, net, **kwargs) -> str:
    faces = net.smpl.faces_tensor.numpy()
    marker_faces = M.decimated_faces(faces, 300)
    with ResultsBag(str(path), faces=faces, num_vertices=net.smpl.num_vertices, **kwargs) as bag:
        for k, (stamp, people) in enumerate(frames):
            header = _header(stamp, "")
            messages = M.frame_messages(people, header, "camera_optical", "odom", False, net.smpl, marker_faces,
                                        mesh=k == 0, markers=True, tf=True)
            log_time = 10_000 + k * 1_000_000           # log times deliberately differ from the header stamps
            bag.write_frame(log_time, messages)
            if bag.images:
                rgb = np.full((48, 64, 3), (200, 30, 10), np.uint8)
                bag.write_image(log_time, _header(stamp, "").stamp, "camera_optical", rgb)
    return str(path)


@pytest.mark.parametrize("name", ["results.mcap", "results"])
def test_bag_reads_back_with_only_its_own_schemas(frames, synthetic_net, tmp_path, name):
    """One .mcap file, or a rosbag2 folder (metadata.yaml + the .mcap) for a name without the suffix."""
    bag = _write(tmp_path / name, frames, synthetic_net, images=True)
    assert sorted(os.listdir(tmp_path)) == [name]                       # no staging folder left behind
    if name == "results":
        assert sorted(os.listdir(bag)) == ["metadata.yaml", "results.mcap"]
    data = Path(bag if name.endswith(".mcap") else os.path.join(bag, "results.mcap")).read_bytes()
    assert data.startswith(b"\x89MCAP0\r\n") and b"ros2msg" in data and b"ros2idl" not in data
    got: dict[str, list] = {topic: [] for topic in TOPIC_TYPES}
    with AnyReader([Path(bag)]) as reader:
        # a typestore knowing nothing but the definitions stored in the file, as Foxglove decodes it
        store = get_typestore(Stores.EMPTY)
        for conn in reader.connections:
            assert conn.msgdef.format == MessageDefinitionFormat.MSG and conn.msgtype == TOPIC_TYPES[conn.topic]
            store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        durability = {c.topic: c.ext.offered_qos_profiles[0].durability for c in reader.connections}
        for conn, log_time, raw in reader.messages():
            got[conn.topic].append((log_time, store.deserialize_cdr(raw, conn.msgtype)))
    assert durability[MESH_FACES] == QosDurability.TRANSIENT_LOCAL and durability[HUMANS] == QosDurability.VOLATILE
    log_times = [10_000 + k * 1_000_000 for k in range(FRAMES)]
    stamps = [s for s, _ in frames]
    humans = got[HUMANS]
    assert [t for t, _ in humans] == log_times
    assert [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for _, m in humans] == stamps
    for (_, people), (_, msg) in zip(frames, humans):
        assert [h.id for h in msg.humans] == [p.track_id for p in people] == [1, 2]
        assert msg.camera_frame_id == "camera_optical" and msg.header.frame_id == ""
        assert [h.world_frame_id for h in msg.humans] == ["wham_world_1", "wham_world_2"]
    assert [h.state for h in humans[3][1].humans] == [1, 2]                # person 2 lost in frame 3
    first = humans[0][1].humans[0]
    assert first.vertices_world.shape == (3 * synthetic_net.smpl.num_vertices,)      # mesh only in frame 0
    assert humans[1][1].humans[0].vertices_world.size == 0
    np.testing.assert_allclose(first.betas, frames[0][1][0].output.betas.numpy(), rtol=1e-6)
    tf = got[TF]
    assert [t for t, _ in tf] == log_times
    for (stamp, _), (_, msg) in zip(frames, tf):
        assert [(t.header.frame_id, t.child_frame_id) for t in msg.transforms] == [
            ("wham_world_1", "body_1"), ("wham_world_2", "body_2")]
        assert all(t.header.stamp.sec * 1_000_000_000 + t.header.stamp.nanosec == stamp for t in msg.transforms)
    assert [len(m.markers) for _, m in got[MARKERS]] == [4] * FRAMES           # mesh + skeleton per person
    topology = got[MESH_FACES]
    assert len(topology) == 1 and topology[0][0] == log_times[0]              # once, at the first log time
    faces = synthetic_net.smpl.faces_tensor.numpy()
    assert topology[0][1].num_vertices == synthetic_net.smpl.num_vertices
    np.testing.assert_array_equal(topology[0][1].faces, faces.reshape(-1))
    assert topology[0][1].header.stamp.sec * 1_000_000_000 + topology[0][1].header.stamp.nanosec == stamps[0]
    images = got[IMAGE]
    assert len(images) == FRAMES and images[0][1].format == "jpeg"
    decoded = cv2.imdecode(np.asarray(images[0][1].data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (48, 64, 3) and abs(int(decoded[10, 10, 2]) - 200) < 8     # BGR: red stays red


def test_stored_type_hashes_are_the_built_interfaces(frames, synthetic_net, tmp_path):
    """The hashes in the bag are rosidl's (so ROS 2 players accept the topics as the installed types), in the
    folder's metadata.yaml and in the rosbag2 metadata record a single .mcap carries."""
    import json

    from wham_ros.offline.results_bag import msg_folder

    bag = _write(tmp_path / "r", frames[:1], synthetic_net)            # a folder: its metadata.yaml has them
    with AnyReader([Path(bag)]) as reader:
        digests = {c.msgtype: c.digest for c in reader.connections}
    single = Path(_write(tmp_path / "s.mcap", frames[:1], synthetic_net)).read_bytes()
    assert all(d.encode() in single for d in digests.values())         # inside the file's rosbag2 record
    assert "sensor_msgs/msg/CompressedImage" not in digests              # images are off by default
    built = msg_folder() / "HumanArray.json"
    if built.is_file():
        hashes = {h["type_name"]: h["hash_string"] for h in json.loads(built.read_text())["type_hashes"]}
        assert digests["wham_ros/msg/HumanArray"] == hashes["wham_ros/msg/HumanArray"]
    assert digests["tf2_msgs/msg/TFMessage"] == \
        "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087"


def test_failure_leaves_nothing_and_existing_bags_are_kept(frames, synthetic_net, tmp_path):
    target = tmp_path / "results"
    faces = synthetic_net.smpl.faces_tensor.numpy()
    with pytest.raises(RuntimeError, match="boom"):
        with ResultsBag(str(target), faces=faces, num_vertices=synthetic_net.smpl.num_vertices) as bag:
            bag.write(HUMANS, 1, M.human_array(_header(1, ""), "cam", []))
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []                          # neither the bag nor its staging folder
    _write(target, frames[:2], synthetic_net)
    with pytest.raises(ResultsBagError, match="already a bag"):
        ResultsBag(str(target), faces=faces, num_vertices=synthetic_net.smpl.num_vertices)
    before = (target / "results.mcap").read_bytes()
    with pytest.raises(RuntimeError):                          # a failed overwrite keeps the old bag intact
        with ResultsBag(str(target), faces=faces, num_vertices=synthetic_net.smpl.num_vertices, overwrite=True):
            raise RuntimeError("no")
    assert (target / "results.mcap").read_bytes() == before and sorted(os.listdir(tmp_path)) == ["results"]
    _write(target, frames[:1], synthetic_net, overwrite=True)
    with AnyReader([target]) as reader:
        assert sum(1 for c, _, _ in reader.messages() if c.topic == HUMANS) == 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ResultsBagError, match="not a bag"):
        ResultsBag(str(tmp_path / "other"), faces=faces, num_vertices=synthetic_net.smpl.num_vertices, overwrite=True)


def test_single_file_is_replaced_only_on_request(frames, synthetic_net, tmp_path):
    target = tmp_path / "results.mcap"
    faces, V = synthetic_net.smpl.faces_tensor.numpy(), synthetic_net.smpl.num_vertices
    with pytest.raises(RuntimeError):
        with ResultsBag(str(target), faces=faces, num_vertices=V):
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    _write(target, frames[:2], synthetic_net)
    with pytest.raises(ResultsBagError, match="already exists"):
        ResultsBag(str(target), faces=faces, num_vertices=V)
    _write(target, frames[:1], synthetic_net, overwrite=True)
    assert os.listdir(tmp_path) == ["results.mcap"]
    with AnyReader([target]) as reader:
        assert sum(1 for c, _, _ in reader.messages() if c.topic == HUMANS) == 1
    (tmp_path / "folder.mcap").mkdir()
    with pytest.raises(ResultsBagError, match="not a file"):
        ResultsBag(str(tmp_path / "folder.mcap"), faces=faces, num_vertices=V, overwrite=True)


def test_wrong_topic_or_type_is_named(synthetic_net, tmp_path):
    faces = synthetic_net.smpl.faces_tensor.numpy()
    with ResultsBag(str(tmp_path / "b"), faces=faces, num_vertices=synthetic_net.smpl.num_vertices) as bag:
        with pytest.raises(ResultsBagError, match=r"/tf carries tf2_msgs/msg/TFMessage, got wham_ros/msg/HumanArray"):
            bag.write(TF, 0, M.human_array(_header(0, ""), "cam", []))
        with pytest.raises(ResultsBagError, match=r"images=True"):
            bag.write(IMAGE, 0, M.human_array(_header(0, ""), "cam", []))
    with pytest.raises(ResultsBagError, match=r"outside an open bag"):
        bag.write(HUMANS, 0, M.human_array(_header(0, ""), "cam", []))
    with pytest.raises(ResultsBagError, match=r"\[0, 10\)"):
        ResultsBag(str(tmp_path / "c"), faces=faces, num_vertices=10)
