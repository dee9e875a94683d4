"""Results as a self-describing MCAP rosbag2: what the node would have published, frame by frame.

    with ResultsBag("out/results.mcap", faces=faces, num_vertices=6890) as bag:
        for stamp_ns, messages in frames:                   # messages: ros.messages.frame_messages(...)
            bag.write_frame(stamp_ns, messages)

A path ending in ``.mcap`` gives that one file (the rosbag2 metadata travels inside it, as a
``rosbag2`` metadata record; Foxglove, ``ros2 bag play`` and ``rosbags`` open the file itself);
any other path gives a rosbag2 folder: ``<path>/<name>.mcap`` + ``<path>/metadata.yaml``.

Topics (all absolute; the node's relative names resolved in the root namespace):

* ``/humans``             wham_ros/msg/HumanArray   every processed image (also with nobody in it)
* ``/tf``                 tf2_msgs/msg/TFMessage    world (or ``wham_world_<id>``) -> ``body_<id>``
* ``/humans/markers``     visualization_msgs/msg/MarkerArray   mesh + skeleton per person
* ``/humans/mesh_faces``  wham_ros/msg/MeshTopology once, at the first stamp, offered transient-local
  so ``ros2 bag play`` latches it for late subscribers
* ``/camera/image/compressed`` sensor_msgs/msg/CompressedImage (JPEG of the input), only with ``images=True``

Message data is CDR from ``rclpy.serialization.serialize_message`` of the real ROS 2 message
objects (so the bytes are exactly what the node puts on the wire). Every channel's schema
is stored in the file (encoding ``ros2msg``, dependencies included), the package's own types
read from its ``msg/*.msg`` files, so Foxglove or ``rosbags`` decode the bag without this
package. Header stamps are the caller's (the input's stamps); each message's log time is the
``time_ns`` passed with it.

The bag is written under a temporary folder beside the target and renamed into place on a clean
close: an exception inside the ``with`` block leaves nothing under the final name (an older bag
or file there, replaced only with ``overwrite=True``, stays as it was).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from wham_ros import __version__
from wham_ros.errors import WhamError

HUMANS, TF, MARKERS, MESH_FACES, IMAGE = ("/humans", "/tf", "/humans/markers", "/humans/mesh_faces",
                                          "/camera/image/compressed")
#: topic -> ROS 2 type name
TOPIC_TYPES = {
    HUMANS: "wham_ros/msg/HumanArray",
    TF: "tf2_msgs/msg/TFMessage",
    MARKERS: "visualization_msgs/msg/MarkerArray",
    MESH_FACES: "wham_ros/msg/MeshTopology",
    IMAGE: "sensor_msgs/msg/CompressedImage",
}
#: offered QoS (reliability, durability, depth): the node's publishers; tf2's depth for /tf
_QOS = {HUMANS: ("reliable", "volatile", 10), TF: ("reliable", "volatile", 100),
        MARKERS: ("reliable", "volatile", 2), MESH_FACES: ("reliable", "transient_local", 1),
        IMAGE: ("reliable", "volatile", 10)}
CUSTOM_TYPES = ("Human", "HumanArray", "MeshTopology")
#: rosbag2 metadata version 8 (Iron and newer read it; its QoS are plain integers, which every reader parses)
BAG_VERSION = 8


class ResultsBagError(WhamError):
    """The results bag cannot be created or written (target exists, wrong message type, not open)."""


def msg_folder() -> Path:
    """The folder holding this package's Human.msg, HumanArray.msg and MeshTopology.msg.

    The installed interface share (``<prefix>/share/wham_ros/msg``, which the generated message
    classes were built from) comes first, then a source checkout's ``msg/``.
    """
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    candidates = [Path(p) / "share" / "wham_ros" / "msg" for p in prefixes]
    candidates.append(Path(__file__).resolve().parents[2] / "msg")
    for folder in candidates:
        if all((folder / f"{name}.msg").is_file() for name in CUSTOM_TYPES):
            return folder
    raise ResultsBagError("wham_ros message definitions (Human.msg, HumanArray.msg, MeshTopology.msg) not found in "
                          + ", ".join(str(c) for c in candidates) + ": build and install the package (./install.sh)")


def results_typestore() -> Any:
    """A rosbags typestore (ROS 2 Kilted's standard types) with the package's types registered from ``msg/``.

    Where the build's type hashes (``<name>.json`` beside the ``.msg``) exist, they must equal the hashes
    of the registered definitions: a mismatch means the message classes and the files disagree.
    """
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    folder = msg_folder()
    types: dict = {}
    for name in CUSTOM_TYPES:
        types.update(get_types_from_msg((folder / f"{name}.msg").read_text(), f"wham_ros/msg/{name}"))
    store.register(types)
    for name in CUSTOM_TYPES:
        built = folder / f"{name}.json"
        if not built.is_file():
            continue
        wanted = [h["hash_string"] for h in json.loads(built.read_text())["type_hashes"]
                  if h["type_name"] == f"wham_ros/msg/{name}"]
        have = store.hash_rihs01(f"wham_ros/msg/{name}")
        if wanted and wanted[0] != have:
            raise ResultsBagError(f"{folder / name}.msg hashes to {have} but the built interface says {wanted[0]}: "
                                  "rebuild the package (./install.sh)")
    return store


def _qos(topic: str) -> Any:
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    reliability, durability, depth = _QOS[topic]
    unspecified = QosTime(0, 0)            # the middleware default (infinite), as rosbag2 stores it
    return Qos(QosHistory.KEEP_LAST, depth, QosReliability[reliability.upper()], QosDurability[durability.upper()],
               unspecified, unspecified, QosLiveliness.AUTOMATIC, unspecified, False)


def _type_name(msg: object) -> str:
    """ROS 2 type name of a generated message object ("pkg/msg/Name")."""
    cls = type(msg)
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def _is_bag(folder: Path) -> bool:
    return (folder / "metadata.yaml").is_file()


class ResultsBag:
    """Context manager writing one results bag: an MCAP file (path ``*.mcap``) or a rosbag2 folder.

    path: ``<name>.mcap`` for one file, else the bag folder to create (``<path>/<name>.mcap`` +
    ``metadata.yaml``). An existing file of that name, or an existing complete bag folder, is
    replaced only with ``overwrite=True``; anything else at that path is refused.
    faces (F, 3): the body mesh's triangles (all of them) for ``/humans/mesh_faces``;
    num_vertices: vertices per body. images: add ``/camera/image/compressed``.
    """

    def __init__(self, path: str, *, faces: np.ndarray, num_vertices: int, images: bool = False,
                 overwrite: bool = False) -> None:
        self.path = Path(path)
        self.single_file = self.path.suffix == ".mcap"
        # the bag folder rosbags writes (inside the staging folder); its .mcap is named after it
        self._bag_name = self.path.stem if self.single_file else self.path.name
        self.images = images
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0:
            raise ResultsBagError(f"faces must be a non-empty (F, 3) array of vertex indices, got shape {faces.shape}")
        if faces.min() < 0 or faces.max() >= num_vertices:
            raise ResultsBagError(f"face indices must lie in [0, {num_vertices}), got [{faces.min()}, {faces.max()}]")
        self._faces, self._num_vertices = faces.astype(np.uint32).reshape(-1), int(num_vertices)
        self._overwrite = overwrite
        self._check_target()
        self._writer: Any = None
        self._connections: dict[str, Any] = {}
        self._topology_written = False
        self._staging: Path | None = None

    def _check_target(self) -> None:
        """Refuse what must not be replaced: without ``overwrite`` anything; else all but a plain .mcap file
        (single-file mode) or a complete bag folder or an empty folder (folder mode)."""
        if not (self.path.exists() or self.path.is_symlink()):
            return
        if self.single_file:
            if self.path.is_symlink() or not self.path.is_file():
                raise ResultsBagError(f"{self.path} exists and is not a file: not replacing it with a bag")
            if not self._overwrite:
                raise ResultsBagError(f"{self.path} already exists: pass overwrite=True to replace it")
            return
        if not self.path.is_dir() or self.path.is_symlink():
            raise ResultsBagError(f"{self.path} exists and is not a folder: not replacing it with a bag")
        if _is_bag(self.path):
            if not self._overwrite:
                raise ResultsBagError(f"{self.path} is already a bag: pass overwrite=True to replace it")
        elif any(self.path.iterdir()):
            raise ResultsBagError(f"{self.path} is a folder with files but not a bag: not replacing it")

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> ResultsBag:
        """Create the bag under a temporary folder beside the target (called by ``with``)."""
        from rosbags.rosbag2 import StoragePlugin, Writer

        if self._writer is not None:
            raise ResultsBagError(f"{self.path}: already open")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # the bag folder keeps its final name inside the staging folder, so the .mcap inside is named after it
        self._staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent))
        try:
            self._writer = Writer(self._staging / self._bag_name, version=BAG_VERSION,
                                  storage_plugin=StoragePlugin.MCAP)
            self._writer.set_custom_data("wham_ros.version", __version__)
            self._writer.open()
            store = results_typestore()
            for topic, msgtype in TOPIC_TYPES.items():
                if topic != IMAGE or self.images:
                    self._connections[topic] = self._writer.add_connection(
                        topic, msgtype, typestore=store, offered_qos_profiles=[_qos(topic)])
        except BaseException:
            self.abort()
            raise
        return self

    def close(self) -> str:
        """Finish the file and move the bag to its final name; returns that path."""
        if self._writer is None:
            raise ResultsBagError(f"{self.path}: not open")
        try:
            self._writer.close()
        except BaseException:
            self.abort()
            raise
        self._writer = None
        staged = self._staging / self._bag_name
        if self.single_file:
            staged = staged / f"{self._bag_name}.mcap"
        try:
            self._check_target()            # again: something may have appeared there while writing
        except ResultsBagError:
            self.abort()
            raise
        trash = None
        if self.path.is_dir():
            # an empty folder or (checked at construction) a bag to replace: move it aside, then swap
            trash = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old", dir=self.path.parent))
            os.replace(self.path, trash / self.path.name)
        os.replace(staged, self.path)
        shutil.rmtree(self._staging, ignore_errors=True)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        self._staging = None
        return str(self.path)

    def abort(self) -> None:
        """Drop everything written so far; the final path is left as it was."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.abort()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def __enter__(self) -> ResultsBag:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # ------------------------------------------------------------------ writing
    def write(self, topic: str, time_ns: int, msg: object) -> None:
        """Append one ROS 2 message to ``topic`` (one of :data:`TOPIC_TYPES`) with log time ``time_ns`` (ns).

        The mesh topology goes out first, at the first message's time, stamped with that message's
        header stamp (or ``time_ns`` when it has no header).
        """
        from rclpy.serialization import serialize_message

        if self._writer is None:
            raise ResultsBagError(f"{self.path}: write() outside an open bag (use 'with ResultsBag(...)')")
        connection = self._connections.get(topic)
        if connection is None:
            known = ", ".join(self._connections)
            hint = " (images=True adds it)" if topic == IMAGE else ""
            raise ResultsBagError(f"{self.path}: no topic {topic!r} in this bag{hint}; topics: {known}")
        if _type_name(msg) != TOPIC_TYPES[topic]:
            raise ResultsBagError(f"{topic} carries {TOPIC_TYPES[topic]}, got {_type_name(msg)}")
        if not self._topology_written and topic != MESH_FACES:
            self._write_topology(time_ns, getattr(getattr(msg, "header", None), "stamp", None))
        self._writer.write(connection, int(time_ns), serialize_message(msg))
        if topic == MESH_FACES:
            self._topology_written = True

    def write_frame(self, time_ns: int, messages: Any) -> None:
        """One image's :class:`wham_ros.ros.messages.FrameMessages`: humans, then TF and markers when present."""
        self.write(HUMANS, time_ns, messages.humans)
        if messages.tf is not None:
            self.write(TF, time_ns, messages.tf)
        if messages.markers is not None:
            self.write(MARKERS, time_ns, messages.markers)

    def write_image(self, time_ns: int, stamp: Any, frame_id: str, rgb: np.ndarray, quality: int = 90) -> None:
        """The input image (H, W, 3) uint8 RGB as JPEG on ``/camera/image/compressed``, log time ``time_ns``;
        stamp: its ``builtin_interfaces/Time``; frame_id: its optical frame."""
        import cv2
        from sensor_msgs.msg import CompressedImage
        from std_msgs.msg import Header

        from wham_ros.perception.base import check_rgb

        check_rgb(rgb, "ResultsBag.write_image")
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise ResultsBagError(f"JPEG encoding failed for an image of shape {rgb.shape}")
        self.write(IMAGE, time_ns, CompressedImage(header=Header(stamp=stamp, frame_id=frame_id), format="jpeg",
                                                   data=jpeg.tobytes()))

    def _write_topology(self, time_ns: int, stamp: Any) -> None:
        import array

        from builtin_interfaces.msg import Time

        from wham_ros.msg import MeshTopology

        if stamp is None:
            stamp = Time(sec=int(time_ns // 1_000_000_000), nanosec=int(time_ns % 1_000_000_000))
        topology = MeshTopology(num_vertices=self._num_vertices)
        topology.header.stamp = stamp
        topology.faces = array.array("I", self._faces.tobytes())
        self.write(MESH_FACES, time_ns, topology)
