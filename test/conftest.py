"""Shared fixtures: synthetic body model and weights, and the shared parity fixtures when present."""
from __future__ import annotations

import os
import random
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("WHAM_ROS_SHARED", os.path.join(ROOT, "..", "shared"))
PARITY = os.path.join(SHARED, "parity")
sys.path.insert(0, HERE)

torch.set_num_threads(1)

# ROS 2 tests talk over shared memory only, on a domain of their own (read at rclpy.init()).
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(HERE, "fastdds_shm.xml"))
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def parity_cases() -> list[str]:
    """Folders holding inputs.pt / outputs.pt: the public case and any hidden ones beside it."""
    cases = [PARITY]
    hidden = os.path.join(SHARED, "hidden")
    for folder in (hidden, os.path.join(hidden, "late_track")):
        if os.path.isfile(os.path.join(folder, "inputs.pt")):
            cases.append(folder)
    return cases


@pytest.fixture(scope="session")
def parity_dir() -> str:
    if not os.path.isfile(os.path.join(PARITY, "inputs.pt")):
        pytest.skip(f"WHAM parity fixtures not found at {PARITY} (set WHAM_ROS_SHARED to the shared/ folder)")
    return PARITY


@pytest.fixture(scope="session")
def parity_weights(parity_dir):
    sys.path.insert(0, parity_dir)
    import wham_parity_weights

    return wham_parity_weights


@pytest.fixture(scope="session")
def synthetic_body_dir(tmp_path_factory) -> str:
    from wham_ros.model.synthetic import write_body_model

    return write_body_model(str(tmp_path_factory.mktemp("body_models")), official_encoding=True)


@pytest.fixture(scope="session")
def test_state_dict():
    from wham_ros.model.synthetic import make_test_state_dict

    return make_test_state_dict(0)


@pytest.fixture(scope="session")
def synthetic_net(synthetic_body_dir, test_state_dict):
    from wham_ros.model import build_network

    return build_network(test_state_dict, synthetic_body_dir)
