"""launch/wham.launch.py checked statically (launch_ros is not installable here), config and install paths."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

from conftest import ROOT, require_file, require_module

from wham_ros.ros.params import PARAMS

yaml = require_module("yaml", "PyYAML")

LAUNCH = os.path.join(ROOT, "launch", "wham.launch.py")


def _tree() -> ast.Module:
    with open(LAUNCH) as fh:
        return ast.parse(fh.read(), LAUNCH)


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def test_launch_file_parses_and_declares_its_arguments():
    tree = _tree()
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    args = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENTS")
    names = [e.elts[0].value for e in args.value.elts]
    assert names == ["params_file", "checkpoint", "body_model_dir", "image", "camera_info", "imu", "use_sim_time",
                     "rviz"]
    nodes = {(kw.arg, getattr(kw.value, "value", None)) for c in _calls(tree, "Node") for kw in c.keywords}
    assert ("package", "wham_ros") in nodes and ("executable", "wham_node") in nodes
    assert ("executable", "rviz2") in nodes
    imports = {a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"LaunchDescription", "DeclareLaunchArgument", "OpaqueFunction", "Node", "FindPackageShare"} <= imports
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for remapped in ("image", "image/compressed", "camera_info", "imu"):
        assert remapped in strings, remapped
    assert {"config", "wham.yaml", "wham.rviz"} <= strings
    for referenced in ("config/wham.yaml", "config/wham.rviz"):
        assert os.path.isfile(os.path.join(ROOT, referenced))


def test_config_yaml_matches_the_declared_parameters():
    with open(os.path.join(ROOT, "config", "wham.yaml")) as fh:
        params = yaml.safe_load(fh)["/**"]["ros__parameters"]
    assert params == {p.name: p.default for p in PARAMS}
    regenerated = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "write_config.py"), "--check"],
                                 capture_output=True, text=True)
    assert regenerated.returncode == 0, regenerated.stdout + regenerated.stderr


def test_rviz_config_shows_image_tf_and_people():
    with open(os.path.join(ROOT, "config", "wham.rviz")) as fh:
        rviz = yaml.safe_load(fh)
    classes = {d["Class"]: d for d in rviz["Visualization Manager"]["Displays"]}
    assert {"rviz_default_plugins/Image", "rviz_default_plugins/TF",
            "rviz_default_plugins/MarkerArray"} <= set(classes)
    assert classes["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == "/humans/markers"


def test_the_cmake_install_has_the_launcher_launch_and_config():
    prefix = sys.prefix
    launcher = os.path.join(prefix, "lib", "wham_ros", "wham_node")
    require_file(launcher, "the CMake-built package", "run ./install.sh")
    assert os.access(launcher, os.X_OK)
    with open(launcher) as fh:
        assert fh.readline().startswith("#!") and "wham_ros.ros.node" in fh.read()
    for rel in ("launch/wham.launch.py", "config/wham.yaml", "config/wham.rviz", "package.xml"):
        assert os.path.isfile(os.path.join(prefix, "share", "wham_ros", rel)), rel
