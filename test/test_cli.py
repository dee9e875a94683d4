"""The main job: ``wham-ros selftest`` on embedded defaults."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_selftest_passes_on_embedded_defaults():
    out = subprocess.run([sys.executable, "-m", "wham_ros.cli", "selftest", "--frames", "15"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "selftest PASSED" in out.stdout
    assert out.stdout.count("streamed == batch: PASS") == 3


def test_make_body_model(tmp_path):
    from wham_ros.model import load_body_model

    subprocess.run([sys.executable, "-m", "wham_ros.cli", "make-body-model", str(tmp_path / "bm"),
                    "--official-encoding"], cwd=ROOT, check=True, capture_output=True)
    assert load_body_model(str(tmp_path / "bm")).num_vertices == 6890
