"""wham-ros export-model: fp16 storage only when the held-out outputs stay within the tolerance, else fp32."""
from __future__ import annotations

import json

import pytest
import torch

from wham_ros.cli import main as cli
from wham_ros.model import build_network
from wham_ros.model.free_body import default_dir
from wham_ros.model.network import NetworkConfig, WhamNetwork
from wham_ros.train.export import export_model
from wham_ros.train.trainer import network_state
from wham_ros.weights import read_file

NET = NetworkConfig(d_embed=16, n_layers=1, refiner_hidden=8, refiner_layers=1, integrator=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, free_corpus_dir):
    """A run folder as the trainer leaves it: config.json and model.pth.tar of a small random network."""
    from wham_ros.model.body_model import load_body_model

    folder = tmp_path_factory.mktemp("run")
    (folder / "config.json").write_text(json.dumps({
        "network": NET.to_dict(), "data": {"path": free_corpus_dir, "holdout_subjects": ["cmu_131"]},
        "optim": {"epoch_iterations": 1}, "val": {"min_frames": 25}}))
    torch.manual_seed(0)
    net = WhamNetwork(load_body_model(default_dir()), NET)
    torch.save({"network": NET.to_dict(), "model": network_state(net), "epoch": 1, "step": 1},
               folder / "model.pth.tar")
    return folder


def test_fp16_is_stored_when_the_outputs_stay_within_the_tolerance(run_dir, tmp_path):
    out = tmp_path / "shipped.pth.tar"
    report = export_model(str(run_dir), str(out))
    assert report.dtype == "float16" and max(report.relative_error.values()) <= 0.01
    saved = read_file(str(out))
    assert saved["stored_dtype"] == "float16" and "optimizer" not in saved
    assert all(v.dtype == torch.float16 for v in saved["model"].values() if v.is_floating_point())
    net = build_network(str(out), default_dir())          # loads as any checkpoint, computing in fp32
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert report.size_bytes < (run_dir / "model.pth.tar").stat().st_size


def test_fp32_is_kept_when_fp16_changes_the_outputs_too_much(run_dir, tmp_path):
    report = export_model(str(run_dir), str(tmp_path / "a.pth.tar"), tolerance=1e-9)
    assert report.dtype == "float32" and report.metrics_stored == report.metrics_fp32
    assert all(v.dtype == torch.float32 for v in read_file(str(tmp_path / "a.pth.tar"))["model"].values()
               if v.is_floating_point())


def test_a_weight_beyond_fp16_range_keeps_fp32(run_dir, tmp_path):
    ckpt = read_file(str(run_dir / "model.pth.tar"))
    key = next(k for k, v in ckpt["model"].items() if v.is_floating_point() and v.numel() > 1)
    ckpt["model"][key] = ckpt["model"][key].clone()
    ckpt["model"][key].view(-1)[0] = 1e6
    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_text((run_dir / "config.json").read_text())
    torch.save(ckpt, big / "model.pth.tar")
    assert export_model(str(big), str(tmp_path / "b.pth.tar")).dtype == "float32"


def test_cli_export_model(run_dir, tmp_path, capsys):
    assert cli(["export-model", str(run_dir), str(tmp_path / "c.pth.tar")]) == 0
    assert "float16" in capsys.readouterr().out
