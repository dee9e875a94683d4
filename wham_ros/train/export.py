"""A training run's weights -> the file that ships: fp16 when the outputs stay within 1 % of fp32.

The network always computes in fp32: fp16 is only how the weights are stored (half the size). Whether
that is good enough is measured, not assumed: the held-out validation sequences of the run's own config
go through the network with the fp32 weights and with the fp16-rounded ones, and every output's relative
difference ``||fp16 - fp32|| / ||fp32||`` must be at most ``tolerance``; else the file is written in fp32.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import torch

from wham_ros.errors import WhamError
from wham_ros.model.body_model import load_body_model, resolve_body_model_dir
from wham_ros.model.checkpoint import build_network
from wham_ros.model.forward import train_forward
from wham_ros.model.network import WhamNetwork
from wham_ros.train.clips import split_by_subject
from wham_ros.train.config import TrainConfig, config_from_dict
from wham_ros.train.keypoint_noise import NOISE_TABLE, load_noise_table
from wham_ros.train.trainer import CHECKPOINT, MODEL, load_clips
from wham_ros.train.validate import ValSequence, evaluate, validation_set
from wham_ros.weights import read_file

#: the outputs compared between fp32 and fp16 weights
COMPARED = ("pose", "betas", "trans_cam", "poses_root_world", "trans_world", "contact", "kp3d")
#: what is kept of a run's checkpoint in the shipped file (no optimiser state)
KEPT = ("network", "recipe", "body_model", "performance", "epoch", "step")


@dataclass
class ExportReport:
    path: str
    dtype: str                                   # float16 | float32
    size_bytes: int
    relative_error: dict[str, float] = field(default_factory=dict)   # output -> ||fp16 - fp32|| / ||fp32||
    metrics_fp32: dict[str, float] = field(default_factory=dict)
    metrics_stored: dict[str, float] = field(default_factory=dict)


def _run_checkpoint(run: str) -> str:
    for name in (MODEL, CHECKPOINT):
        path = os.path.join(run, name) if os.path.isdir(run) else run
        if os.path.isfile(path):
            return path
    raise WhamError(f"{run}: no {MODEL} or {CHECKPOINT} (give a training run folder or its model file)")


def run_config(run_dir: str) -> TrainConfig:
    """The config a run was trained with (its ``config.json``)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise WhamError(f"{run_dir}: no config.json: the run's held-out sequences cannot be rebuilt")
    with open(path) as fh:
        return config_from_dict(json.load(fh), path)


def held_out(cfg: TrainConfig) -> list[ValSequence]:
    """The validation sequences of ``cfg`` (its held-out subjects through its fixed virtual cameras)."""
    body_dir = resolve_body_model_dir(cfg.data.body_model)
    _, val_clips = split_by_subject(load_clips(cfg, body_dir), cfg.data.holdout_subjects)
    if not val_clips:
        raise WhamError("the config holds out no subject: nothing to compare the stored weights on")
    table = load_noise_table(cfg.augment.noise_table) if cfg.augment.noise_table else NOISE_TABLE
    return validation_set(load_body_model(body_dir), val_clips, cfg.augment, cfg.val.min_frames, cfg.val.seed,
                          table)


@torch.no_grad()
def relative_errors(reference: WhamNetwork, other: WhamNetwork, sequences: list[ValSequence]) -> dict[str, float]:
    """``||other - reference|| / ||reference||`` per output of :data:`COMPARED`, pooled over ``sequences``."""
    num = dict.fromkeys(COMPARED, 0.0)
    den = dict.fromkeys(COMPARED, 0.0)
    for seq in sequences:
        a = train_forward(reference, **seq.batch.inputs())
        b = train_forward(other, **seq.batch.inputs())
        for k in COMPARED:
            num[k] += float((b[k] - a[k]).square().sum())
            den[k] += float(a[k].square().sum())
    return {k: (num[k] / den[k]) ** 0.5 if den[k] > 0 else 0.0 for k in COMPARED}


def export_model(run: str, out: str, *, fp16: bool = True, tolerance: float = 0.01) -> ExportReport:
    """Write ``run``'s weights (a run folder or its model/checkpoint file) to ``out`` for shipping."""
    src = _run_checkpoint(run)
    run_dir = run if os.path.isdir(run) else os.path.dirname(src)
    ckpt = read_file(src)
    cfg = run_config(run_dir)
    body_dir = resolve_body_model_dir(cfg.data.body_model)
    net32 = build_network(src, body_dir)
    kept = {k: ckpt[k] for k in KEPT if k in ckpt}
    state = {k: v for k, v in ckpt["model"].items() if not k.startswith("smpl.")}
    report = ExportReport(out, "float32", 0)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    # a weight beyond fp16's range (65504) would become inf: such a network stays fp32
    if fp16 and all(bool(torch.isfinite(v).all()) for v in half.values() if v.is_floating_point()):
        net16 = build_network({**kept, "model": half}, body_dir)
        sequences = held_out(cfg)
        report.relative_error = relative_errors(net32, net16, sequences)
        report.metrics_fp32, report.metrics_stored = evaluate(net32, sequences), evaluate(net16, sequences)
        errors = list(report.relative_error.values())
        if all(math.isfinite(e) for e in errors) and max(errors) <= tolerance:
            state, report.dtype = half, "float16"
        else:
            report.metrics_stored = report.metrics_fp32
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    torch.save({**kept, "model": state, "stored_dtype": report.dtype}, tmp)
    os.replace(tmp, out)
    report.size_bytes = os.path.getsize(out)
    return report
