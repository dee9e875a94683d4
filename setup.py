"""pip install path for wham_ros (no ROS needed): the Python package and the ``wham-ros`` command.

ROS users build the same tree with colcon/ament_cmake (see CMakeLists.txt), which also
generates the ``wham_ros.msg`` interfaces; CMake ignores this file.
"""
from setuptools import find_packages, setup

setup(
    name="wham_ros",
    version="0.1.0",
    description="WHAM (world-grounded humans with accurate motion) online, for ROS 2",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["wham_ros", "wham_ros.*"]),
    # the embedded model (CC BY-SA 3.0, see its LICENSE.md) ships inside the package
    package_data={"wham_ros.model.embedded": ["*.pth.tar", "LICENSE.md"]},
    install_requires=[
        # torch is not pinned here: install the CPU wheel first (pip install torch==2.13.0),
        # otherwise pip may pull a multi-GB CUDA build.
        "torch>=2.6",  # safe_globals with (class, "pickled.name") pairs, for the official front-end checkpoints
        "numpy>=1.26",
        "opencv-python-headless>=4.8",  # crops, tracking features, appearance; pinned by install.sh
        "smplx==0.1.28",
    ],
    # transformers: the reference ViTPose of test/test_front_end_reference.py (tests only)
    # train: wham-ros train's progress bar, YAML configs and loss curves (without them: plain lines, JSON, no PNG)
    extras_require={"test": ["pytest>=8", "ruff>=0.6", "transformers==4.57.6"],
                    "train": ["tqdm>=4.60", "pyyaml>=6", "matplotlib>=3.7"]},
    entry_points={"console_scripts": ["wham-ros = wham_ros.cli:main"]},
)
