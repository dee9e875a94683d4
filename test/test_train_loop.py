"""``wham-ros train``: configs, AMASS-format data, the run folder, resuming = not stopping, fine-tuning."""
from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest
import torch
from conftest import ROOT

from wham_ros.cli import TRAIN_PAUSED, main
from wham_ros.errors import MocapError
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.model import build_network
from wham_ros.model.synthetic import make_test_state_dict
from wham_ros.train.amass import load_amass, load_amass_file
from wham_ros.train.clips import load_corpus_clips
from wham_ros.train.config import ConfigError, config_from_dict, load_config
from wham_ros.train.trainer import CHECKPOINT, MODEL


def write_amass(path: str, frames: int, fps: float, seed: int, speed=(1.0, 0.0)) -> np.ndarray:
    """An AMASS-style SMPL-H file (z up): an upright body swinging its limbs, walking at ``speed`` m/s (x, y)."""
    g = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    poses = np.zeros((frames, 156))
    poses[:, 0] = math.pi / 2                                               # upright in a z-up world
    phase = g.uniform(0, 2 * math.pi, 52 * 3)
    poses[:, 3:] = 0.2 * np.sin(2 * math.pi * 0.8 * t[:, None] + phase[None, 3:])
    trans = np.stack((speed[0] * t, speed[1] * t, np.full(frames, 0.9)), -1)
    np.savez(path, poses=poses, trans=trans, betas=g.normal(0, 0.5, 16), mocap_framerate=np.array(fps),
             gender=np.array("neutral"))
    return poses


@pytest.fixture(scope="module")
def amass_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("amass")
    for subject, seed in (("s1", 0), ("s2", 1), ("s3", 2)):
        os.makedirs(root / "SubsetA" / subject)
        write_amass(str(root / "SubsetA" / subject / "walk_poses.npz"), 800, 120.0, seed)    # 200 frames
    write_amass(str(root / "SubsetA" / "s1" / "turn_poses.npz"), 300, 60.0, 3, speed=(0.3, 0.8))
    write_amass(str(root / "SubsetA" / "s1" / "short_poses.npz"), 90, 120.0, 4)      # 23 frames at 30 fps
    np.savez(root / "SubsetA" / "s1" / "shape.npz", betas=np.zeros(16))
    return str(root)


def tiny_config(tmp_path, amass_dir, body_dir, **changes) -> str:
    cfg = {
        "network": {"d_embed": 16, "n_layers": 1, "refiner_hidden": 8, "refiner_layers": 1, "integrator": False},
        "data": {"kind": "amass", "path": amass_dir, "body_model": body_dir, "holdout_subjects": ["SubsetA_s3"]},
        "optim": {"batch_size": 3, "epochs": 3, "epoch_iterations": 2, "milestones": [1], "lr": 1e-3,
                  "checkpoint_every": 1, "log_every": 1, "threads": 1},
        "loss": {"camera_loss_skip_epoch": 1},
        "val": {"every_epochs": 1},
    }
    for section, values in changes.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    path = str(tmp_path / "train.json")
    with open(path, "w") as fh:
        json.dump(cfg, fh)
    return path


# ---- configs ----------------------------------------------------------------------------------------------
def test_config_defaults_are_official_stage1():
    cfg = config_from_dict({"data": {"windows": "official"}})
    o, loss, a = cfg.optim, cfg.loss, cfg.augment
    assert (o.lr, o.batch_size, o.epochs, o.milestones, o.gamma, o.grad_clip, o.seed) == \
        (5e-4, 64, 100, [60, 80], 0.1, 1.0, 42)
    assert (loss.shape, loss.joint2d, loss.joint3d, loss.pose, loss.cascaded, loss.contact, loss.root_vel,
            loss.root_pose, loss.sliding, loss.camera, loss.loss_weight, loss.camera_loss_skip_epoch) == \
        (0.004, 0.1, 0.4, 8.0, 0.0, 0.04, 0.001, 0.4, 0.5, 0.04, 50.0, 5)
    assert (a.speed_min, a.speed_max, a.shape_noise, a.init_noise, a.moving_camera, a.mask_prob) == \
        (54, 122, 0.1, 0.01, 0.75, 0.03)
    assert "threads" not in cfg.recipe()["optim"] and "output" not in cfg.recipe()


@pytest.mark.parametrize("bad, message", [
    ({"optimiser": {}}, "unknown sections"),
    ({"optim": {"learning_rate": 1}}, r"unknown keys in 'optim'.*learning_rate"),
    ({"optim": {"batch_size": 2.5}}, "optim.batch_size: expected int"),
    ({"data": {"windows": "sliding"}}, "is not one of"),
    ({"network": {"d_embed": -4}}, "d_embed must be a positive integer"),
    ({"optim": {"epoch_iterations": 0}}, "needs data.windows: official"),
    ({"data": {"holdout_subjects": "cmu_131"}}, "data.holdout_subjects: expected list"),
])
def test_bad_configs_are_named(bad, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(bad)


def test_shipped_configs_load():
    for name in ("corpus_stage1.yaml", "amass_stage1.yaml"):
        cfg = load_config(os.path.join(ROOT, "config", "train", name))
        assert cfg.loss.loss_weight == 50.0
    assert load_config(os.path.join(ROOT, "config", "train", "amass_stage1.yaml")).network.d_embed == 512


# ---- AMASS ------------------------------------------------------------------------------------------------
def test_amass_preprocessing(tmp_path):
    path = str(tmp_path / "x.npz")
    poses = write_amass(path, 400, 120.0, 7, speed=(0.0, 1.2))
    clip = load_amass_file(path, str(tmp_path))
    assert clip.frames == 100                                              # every 4th frame of 120 fps
    np.testing.assert_allclose(clip.pose[:, 1:22], poses[::4, 3:66].reshape(100, 21, 3), atol=1e-6)
    np.testing.assert_allclose(clip.pose[:, 22], poses[::4, 66:69], atol=1e-6)   # SMPL-H 22 (left hand)
    np.testing.assert_allclose(clip.pose[:, 23], poses[::4, 111:114], atol=1e-6)  # SMPL-H 37 (right hand)
    # z up -> y down: the upright root becomes R_x(pi), height 0.9 m becomes y = -0.9, forward y becomes z
    root = axis_angle_to_matrix(torch.as_tensor(clip.pose[:, 0], dtype=torch.float64))
    assert torch.allclose(root, axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64)),
                          atol=1e-6)
    np.testing.assert_allclose(clip.trans[:, 1], -0.9, atol=1e-6)
    np.testing.assert_allclose(np.diff(clip.trans[:, 2]), 1.2 * 4 / 120, atol=1e-6)
    assert clip.betas.shape == (10,) and clip.subject == "x" and not clip.treadmill
    write_amass(path, 300, 100.0, 7)
    assert load_amass_file(path, str(tmp_path)).frames == 100                  # k = 3 at 100 fps (33.3 fps)
    np.savez(path, poses=np.zeros((10, 100)), trans=np.zeros((10, 3)), betas=np.zeros(10), mocap_framerate=30.0)
    with pytest.raises(MocapError, match=r"expected \(T, 156\)"):
        load_amass_file(path, str(tmp_path))
    np.savez(path, poses=np.zeros((10, 156)))
    with pytest.raises(MocapError, match="missing"):
        load_amass_file(path, str(tmp_path))


def test_amass_folder_subjects_and_skips(amass_dir):
    clips = load_amass(amass_dir)
    assert sorted(c.id for c in clips) == ["SubsetA_s1_turn_poses", "SubsetA_s1_walk_poses",
                                           "SubsetA_s2_walk_poses", "SubsetA_s3_walk_poses"]
    assert {c.subject for c in clips} == {"SubsetA_s1", "SubsetA_s2", "SubsetA_s3"}


def test_a_corpus_on_another_body_is_refused(free_corpus_dir, synthetic_body_dir):
    with pytest.raises(MocapError, match="was built on the body model"):
        load_corpus_clips(free_corpus_dir, synthetic_body_dir)


# ---- the run folder and resuming ----------------------------------------------------------------------------
def _rows(path: str) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def _same_run(a: str, b: str) -> None:
    ma = torch.load(os.path.join(a, MODEL), weights_only=True)
    mb = torch.load(os.path.join(b, MODEL), weights_only=True)
    assert ma["model"].keys() == mb["model"].keys()
    for k in ma["model"]:
        assert torch.equal(ma["model"][k], mb["model"][k]), k
    oa = torch.load(os.path.join(a, CHECKPOINT), weights_only=True)
    ob = torch.load(os.path.join(b, CHECKPOINT), weights_only=True)
    for i, state in oa["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], ob["optimizer"]["state"][i]["exp_avg_sq"])
    assert oa["scheduler"] == ob["scheduler"] and oa["step"] == ob["step"] == 6
    assert _rows(os.path.join(a, "train.csv")) == _rows(os.path.join(b, "train.csv"))
    assert _rows(os.path.join(a, "val.csv")) == _rows(os.path.join(b, "val.csv"))


def test_resuming_is_the_uninterrupted_run(tmp_path, amass_dir, synthetic_body_dir):
    cfg = tiny_config(tmp_path, amass_dir, synthetic_body_dir)
    whole, paused_mid, paused_end = (str(tmp_path / n) for n in ("whole", "mid", "end"))
    assert main(["train", cfg, "--out", whole]) == 0
    # stopped inside epoch 1, and right after the last iteration of epoch 0 (before its validation and LR step)
    for out, steps in ((paused_mid, "3"), (paused_end, "2")):
        assert main(["train", cfg, "--out", out, "--max-steps", steps]) == TRAIN_PAUSED
        assert main(["train", cfg, "--out", out, "--resume"]) == 0
        _same_run(whole, out)
    rows = _rows(os.path.join(whole, "train.csv"))
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-4, 1e-4])
    assert [r["camera"] == "" for r in rows] == [True, True, False, False, False, False]
    assert len(_rows(os.path.join(whole, "val.csv"))) == 3
    assert os.path.getsize(os.path.join(whole, "loss_curve.png")) > 1000
    # the weights train and load where official checkpoints load, with their own size
    net = build_network(os.path.join(whole, MODEL), synthetic_body_dir)
    assert net.config.d_embed == 16 and not net.config.integrator
    saved = torch.load(os.path.join(whole, MODEL), weights_only=True)
    assert saved["step"] == 6 and set(saved["performance"]) == {"mpjpe", "pa_mpjpe", "w_mpjpe100", "wa_mpjpe100",
                                                                "rte", "jitter", "foot_sliding"}


def test_run_folder_rules(tmp_path, amass_dir, synthetic_body_dir, capsys):
    cfg = tiny_config(tmp_path, amass_dir, synthetic_body_dir, optim={"epochs": 1, "epoch_iterations": 1})
    out = str(tmp_path / "run")
    assert main(["train", cfg, "--out", out, "--resume"]) == 2
    assert "holds no run to resume" in capsys.readouterr().err
    assert main(["train", cfg, "--out", out]) == 0
    assert main(["train", cfg, "--out", out]) == 2
    assert "already holds a run" in capsys.readouterr().err
    changed = tiny_config(tmp_path, amass_dir, synthetic_body_dir, optim={"epochs": 1, "epoch_iterations": 1,
                                                                         "lr": 0.01})
    assert main(["train", changed, "--out", out, "--resume"]) == 2
    assert "changed: ['optim.lr']" in capsys.readouterr().err
    bad = tiny_config(tmp_path, amass_dir, synthetic_body_dir, data={"holdout_subjects": ["nobody"]})
    assert main(["train", bad, "--out", str(tmp_path / "other")]) == 2
    assert "held-out subjects ['nobody'] are not in the data" in capsys.readouterr().err


@pytest.mark.slow          # 10-30 s here: a 42 M-parameter step and a 0.5 GB resume checkpoint
def test_fine_tuning_the_official_size_network_on_amass(tmp_path, amass_dir, synthetic_body_dir):
    """The official recipe's network (integrator included), started from an official-format checkpoint."""
    init = str(tmp_path / "wham_vit_w_3dpw.pth.tar")
    official = make_test_state_dict(0)
    torch.save({"epoch": 30, "model": official, "performance": 45.0}, init)
    cfg = tiny_config(tmp_path, amass_dir, synthetic_body_dir,
                      network={"d_embed": 512, "n_layers": 3, "refiner_hidden": 512, "refiner_layers": 2,
                               "integrator": True},
                      optim={"batch_size": 2, "epochs": 1, "epoch_iterations": 1, "init_checkpoint": init,
                             "lr": 1e-5, "threads": 2},
                      data={"windows": "official"}, val={"min_frames": 400})
    out = str(tmp_path / "official")
    assert main(["train", cfg, "--out", out]) == 0
    tuned = torch.load(os.path.join(out, MODEL), weights_only=True)
    assert tuned["model"].keys() == official.keys()                        # the official layout
    changed = [k for k in official if not torch.equal(official[k], tuned["model"][k])]
    assert "motion_encoder.embed_layer.weight" in changed
    assert not any(k.startswith("integrator.") for k in changed)           # stage 1 never runs it
    net = build_network(os.path.join(out, MODEL), synthetic_body_dir)
    assert sum(p.numel() for n, p in net.named_parameters() if not n.startswith("smpl.")) == 42_034_668
