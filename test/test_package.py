"""The repository is one ROS 2 package: package.xml, the pip path without ROS, the CMake-built messages."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from conftest import ROOT, require_module


def test_package_xml_is_format_3_ament_cmake_interface_package():
    catkin_pkg = require_module("catkin_pkg.package", "catkin_pkg")
    pkg = catkin_pkg.parse_package(os.path.join(ROOT, "package.xml"))
    pkg.validate()
    assert pkg.name == "wham_ros" and pkg.package_format == 3
    assert pkg.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [g.name for g in pkg.member_of_groups]
    exec_deps = {d.name for d in pkg.exec_depends}
    assert {"rclpy", "sensor_msgs", "tf2_msgs", "visualization_msgs", "diagnostic_msgs"} <= exec_deps


def test_pip_wheel_has_the_core_and_the_command_without_ros(tmp_path):
    """``pip install .`` path: a wheel with every sub-package and the wham-ros console script, no msg module."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, cwd=tmp_path)
    wheel = next(p for p in os.listdir(tmp_path) if p.endswith(".whl"))
    names = zipfile.ZipFile(tmp_path / wheel).namelist()
    for module in ("wham_ros/model/network.py", "wham_ros/stream/engine.py", "wham_ros/geometry/rotations.py",
                   "wham_ros/cli.py"):
        assert module in names
    assert not any(n.startswith("wham_ros/msg/") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "wham-ros = wham_ros.cli:main" in zipfile.ZipFile(tmp_path / wheel).read(entry).decode()


def test_core_imports_without_ros():
    code = ("import sys, wham_ros.model, wham_ros.stream, wham_ros.geometry.camera_motion, wham_ros.cli; "
            "assert 'rclpy' not in sys.modules, 'the core must not import rclpy'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_front_end_does_not_use_the_test_only_reference():
    """transformers is installed for test_front_end_reference.py only: no wham_ros module may import it."""
    code = ("import sys, wham_ros.pipeline, wham_ros.perception.official, wham_ros.perception.hmr2; "
            "assert 'transformers' not in sys.modules, 'transformers is a test-only dependency'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
