"""Read ROS 1 (.bag) and ROS 2 (sqlite3 / MCAP) bags with ``rosbags`` into ROS 2 message objects.

ROS 1 messages differ from their ROS 2 counterparts in a few field names
(``CameraInfo.K`` vs ``k``) and in the header's ``seq``; :func:`to_ros2` copies any
decoded message into a ROS 2 message class field by field, matching names
case-insensitively, so the node's conversion layer sees the same types whatever
the bag's origin.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _field(obj: Any, name: str) -> Any:
    """``obj.name``, matching the name case-insensitively (ROS 1 ``K`` for ROS 2 ``k``)."""
    if hasattr(obj, name):
        return getattr(obj, name)
    for candidate in getattr(obj, "__dataclass_fields__", None) or vars(obj):
        if candidate.lower() == name.lower():
            return getattr(obj, candidate)
    raise AttributeError(f"{type(obj).__name__} has no field {name!r}")


def _element_class(cls: type, index: int) -> type | None:
    """The message class of a sequence-of-messages field, from rosidl's slot types (None for primitives)."""
    slot = cls.SLOT_TYPES[index]
    inner = getattr(slot, "value_type", None)
    if inner is None or not hasattr(inner, "namespaces"):
        return None
    module = importlib.import_module(".".join(inner.namespaces))
    return getattr(module, inner.name)


def to_ros2(obj: Any, cls: type) -> Any:
    """A ``cls`` (ROS 2 message class) instance with the values of ``obj`` (any decoded message)."""
    out = cls()
    for index, (name, ftype) in enumerate(cls.get_fields_and_field_types().items()):
        value = _field(obj, name)
        current = getattr(out, name)
        if hasattr(current, "get_fields_and_field_types"):
            value = to_ros2(value, type(current))
        elif ftype.startswith("sequence<") and "/" in ftype:
            element = _element_class(cls, index)
            value = [to_ros2(v, element) for v in value]
        elif isinstance(value, np.ndarray) and ftype.startswith("sequence<"):
            value = value.tobytes() if ftype == "sequence<uint8>" else value.tolist()
        setattr(out, name, value)
    return out


def read_bag(path: str | Path, types: dict[str, type], topics: Iterable[str] | None = None
             ) -> Iterator[tuple[str, int, Any]]:
    """Yield (topic, bag time in ns, ROS 2 message) for every message whose type is in ``types``.

    ``types`` maps ROS 2 type names ("sensor_msgs/msg/Image") to message classes.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    wanted = None if topics is None else set(topics)
    with AnyReader([Path(path)], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        conns = [c for c in reader.connections if c.msgtype in types and (wanted is None or c.topic in wanted)]
        for conn, t, raw in reader.messages(connections=conns):
            yield conn.topic, t, to_ros2(reader.deserialize(raw, conn.msgtype), types[conn.msgtype])


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """topic -> (type name, message count) of every topic a bag declares, without reading its messages.

    A ROS 1 topic recorded over several connections is counted once, with the messages of all of them.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    out: dict[str, tuple[str, int]] = {}
    with AnyReader([Path(path)], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        for conn in reader.connections:
            msgtype, count = out.get(conn.topic, (conn.msgtype, 0))
            out[conn.topic] = (msgtype, count + conn.msgcount)
    return out
