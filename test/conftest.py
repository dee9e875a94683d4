"""Shared fixtures: synthetic body model and weights, the shared parity fixtures, and the rule for what a
test needs but cannot find (:func:`require_file`, :func:`require_module`)."""
from __future__ import annotations

import importlib
import os
import random
import sys
from types import ModuleType
from typing import NoReturn

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

#: CI (``CI=true``) runs on a fresh ./install.sh with ../shared beside the clone: nothing may be missing there
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """A test cannot run because something it needs is missing: skip it, but fail it in CI.

    A user without the shared data or without ROS gets a skip naming what to provide; in CI the same
    absence means a broken install or a lost fixture, and a green run would hide the strongest tests.
    """
    if IN_CI:
        pytest.fail(f"missing in CI (CI={os.environ['CI']}): {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_file(path: str, what: str, fix: str = "set WHAM_ROS_SHARED to the shared/ folder") -> str:
    """``path`` if it exists (file or folder), else :func:`unavailable` naming ``what``, where it was looked for
    and ``fix``, what provides it."""
    if not os.path.exists(path):
        unavailable(f"{what} not found at {path} ({fix})")
    return path


def require_module(name: str, what: str) -> ModuleType:
    """The imported module ``name``, else :func:`unavailable` (install.sh installs every one of them)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{what} cannot be imported ({exc}): run ./install.sh")


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
    require_file(os.path.join(PARITY, "inputs.pt"), "WHAM parity fixtures")
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


#: one clip of each skeleton in ../shared/data/mocap (CMU BVH, iClone BVH, HDM05 ASF/AMC), as relative paths
CORPUS_SAMPLE = ("cmu_131_01_walk_scaled_m.bvh", "cmu_iclone/001/001_01.bvh", "hdm05_cut/1/HDM_bd.asf",
                 "hdm05_cut/1/HDM_bd_depositFloorR_001_120.amc")


@pytest.fixture(scope="session")
def free_corpus_dir(tmp_path_factory) -> str:
    """A corpus of a few real clips (one per skeleton) retargeted onto the free body model."""
    from wham_ros.mocap.corpus import build_corpus
    from wham_ros.model.free_body import check_folder, default_dir

    body = require_file(default_dir(), "the free body model", "run ./install.sh")
    check_folder(body)
    source = tmp_path_factory.mktemp("mocap_sample")
    for relative in CORPUS_SAMPLE:
        original = require_file(os.path.join(SHARED, "data", "mocap", relative), "shared mocap data")
        os.makedirs(os.path.dirname(source / relative), exist_ok=True)
        os.symlink(original, source / relative)
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(str(source), str(out), body, log=lambda _: None)
    return str(out)
