"""Training configuration: one YAML or JSON file, sections that mirror the official stage-1 recipe.

Every default is the official stage-1 value (``configs/yamls/stage1.yaml`` over ``configs/config.py``;
training facts 1.2, 3, 5) except where a field's comment says otherwise. A file lists only what it
changes; unknown sections or keys, and values of the wrong type, are refused with their names::

    output: runs/stage1
    network: {d_embed: 128, n_layers: 2}
    data: {kind: corpus, holdout_subjects: [cmu_131, hdm05_dg]}
    optim: {batch_size: 32, epochs: 100, epoch_iterations: 50}
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from wham_ros.errors import WhamError
from wham_ros.model.network import NetworkConfig


class ConfigError(WhamError, ValueError):
    """A training config that cannot be used (unreadable, unknown key, wrong type or value)."""


@dataclass
class DataConfig:
    """Where the motions come from and which subjects are held out."""

    #: ``corpus`` (``wham-ros build-corpus`` output) or ``amass`` (a folder of AMASS-format .npz files)
    kind: str = "corpus"
    #: the folder; empty: the installed corpus (``<prefix>/share/wham_ros/mocap_corpus``)
    path: str = ""
    #: body model folder; empty: the free body. A corpus must have been built on it (checked by digest)
    body_model: str = ""
    #: whole subjects kept out of training and used only for validation (never for model selection)
    holdout_subjects: list[str] = field(default_factory=lambda: ["cmu_131", "hdm05_dg"])
    #: ``official``: 122-frame windows every 30 frames of clips at least that long, every 4th window per
    #: epoch (offset epoch mod 4). ``random`` (default, a deviation for small corpora): each sample draws its
    #: speed first and then a start uniformly over every frame where that many frames remain, so clips
    #: shorter than 122 frames (most of HDM05's) still train and no start position is privileged
    windows: str = "random"


@dataclass
class AugmentConfig:
    """The official stage-1 augmentations (training facts 3)."""

    #: raw frames resampled onto one sample: l ~ U{speed_min..speed_max} (speed 0.66-1.49 at 82 frames)
    speed_min: int = 54
    speed_max: int = 122
    #: per-coefficient shape noise (sd), the same for every frame of a sample
    shape_noise: float = 0.1
    #: per-joint rotation noise of the initial pose (sd, rad per axis)
    init_noise: float = 0.01
    #: probability that a sample's virtual camera moves (rotation and translation)
    moving_camera: float = 0.75
    #: factor on the 3D keypoint noise table (bias, jitter, peaks); 1 = the tabulated values
    keypoint_noise: float = 1.0
    #: WHAM's ``coco_aug_dict.pth`` if you have it (unpublished); empty: GVHMR's published values
    noise_table: str = ""
    #: probability to hide a keypoint before propagation down the COCO tree
    mask_prob: float = 0.03
    #: box smoothing: ``causal`` (default, a deviation: the median of the last ``box_window`` boxes,
    #: what the online engine feeds the network) or ``centred`` (official: 15-frame centred median, zero-padded)
    box_filter: str = "causal"
    box_window: int = 5


@dataclass
class LossConfig:
    """Stage-1 loss weights (``LOSS.*_LOSS_WEIGHT``) and schedule (training facts 1.2, 5)."""

    shape: float = 0.004
    joint2d: float = 0.1
    joint3d: float = 0.4
    pose: float = 8.0
    cascaded: float = 0.0
    contact: float = 0.04
    root_vel: float = 0.001
    root_pose: float = 0.4
    sliding: float = 0.5
    camera: float = 0.04
    #: global factor on the weighted sum
    loss_weight: float = 50.0
    #: the camera term is off for epochs before this one
    camera_loss_skip_epoch: int = 5
    #: root-velocity windows: ``tiled`` (default: windows of 1, 3, 9, 27 frames tiling the sequence) or
    #: ``official`` (the code's windows: start m, count set by the batch size; training facts 5.4)
    velocity_windows: str = "tiled"


@dataclass
class OptimConfig:
    """Optimiser, schedule, batches and bookkeeping."""

    seed: int = 42
    batch_size: int = 64
    epochs: int = 100
    #: iterations per epoch; 0 = official (every window of this epoch once, the last batch smaller; only
    #: with ``windows: official``). With a small corpus an official epoch is a handful of iterations
    epoch_iterations: int = 0
    lr: float = 5e-4
    #: MultiStepLR, stepped per epoch
    milestones: list[int] = field(default_factory=lambda: [60, 80])
    gamma: float = 0.1
    #: global gradient-norm clip
    grad_clip: float = 1.0
    #: start from these weights (fine-tuning: an official or a wham-ros checkpoint); empty: random init
    init_checkpoint: str = ""
    #: torch intra-op threads; 0 = torch's default
    threads: int = 0
    #: where the network trains (``cpu``, ``cuda``, ``cuda:1``); samples are always built on the CPU
    device: str = "cpu"
    #: write the resume checkpoint every this many iterations (and at every epoch's end)
    checkpoint_every: int = 200
    #: one CSV row every this many iterations
    log_every: int = 10


@dataclass
class ValConfig:
    """Validation on the held-out subjects, seen through fixed virtual cameras."""

    #: validate after every this many epochs (and after the last); 0 = only after the last
    every_epochs: int = 5
    #: clips shorter than this are not used (official AMASS preprocessing drops < 25 frames)
    min_frames: int = 25
    #: the fixed draws (cameras, noise) of the validation samples
    seed: int = 0


@dataclass
class TrainConfig:
    network: NetworkConfig = field(default_factory=NetworkConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    val: ValConfig = field(default_factory=ValConfig)
    #: run folder (checkpoints, logs, plots); ``wham-ros train --out`` overrides it
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def recipe(self) -> dict[str, Any]:
        """What decides the trained weights: everything but the output folder and bookkeeping."""
        d = self.to_dict()
        d.pop("output")
        for key in ("threads", "device", "checkpoint_every", "log_every"):
            d["optim"].pop(key)
        return d


_SECTIONS = {"network": NetworkConfig, "data": DataConfig, "augment": AugmentConfig, "loss": LossConfig,
             "optim": OptimConfig, "val": ValConfig}
_CHOICES = {("data", "kind"): ("corpus", "amass"), ("data", "windows"): ("random", "official"),
            ("augment", "box_filter"): ("causal", "centred"), ("loss", "velocity_windows"): ("tiled", "official")}


def _typed(section: str, name: str, value: Any, default: Any) -> Any:
    where = f"{section}.{name}"
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        kind = type(default[0]) if default else None
        ok = isinstance(value, list) and (kind is None or all(isinstance(v, kind) and not isinstance(v, bool)
                                                               for v in value))
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")
    choices = _CHOICES.get((section, name))
    if choices and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {choices}")
    return value


def config_from_dict(d: dict[str, Any], source: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` from the defaults updated by ``d`` (sections of partial mappings)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(d).__name__}")
    unknown = sorted(set(d) - set(_SECTIONS) - {"output"})
    if unknown:
        raise ConfigError(f"{source}: unknown sections {unknown} (known: {sorted(_SECTIONS)} and 'output')")
    cfg = TrainConfig()
    if "output" in d:
        cfg.output = _typed("", "output", d["output"], "")
    for section, cls in _SECTIONS.items():
        given = d.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{source}: section {section!r} must be a mapping, got {given!r}")
        defaults = getattr(cfg, section)
        names = {f.name for f in fields(cls)}
        bad = sorted(set(given) - names)
        if bad:
            raise ConfigError(f"{source}: unknown keys in {section!r}: {bad} (known: {sorted(names)})")
        values = {n: _typed(section, n, given[n], getattr(defaults, n)) for n in given}
        try:
            setattr(cfg, section, cls(**{**asdict(defaults), **values}))
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
    _check(cfg, source)
    return cfg


def _check(cfg: TrainConfig, source: str) -> None:
    a, o = cfg.augment, cfg.optim
    problems = []
    if not 2 <= a.speed_min <= a.speed_max:
        problems.append(f"augment.speed_min/speed_max must satisfy 2 <= min <= max, got {a.speed_min}, {a.speed_max}")
    if a.box_window < 1:
        problems.append("augment.box_window must be >= 1")
    for name in ("moving_camera", "mask_prob"):
        if not 0.0 <= getattr(a, name) <= 1.0:
            problems.append(f"augment.{name} must be a probability")
    if o.batch_size < 1 or o.epochs < 1 or o.epoch_iterations < 0 or o.lr <= 0:
        problems.append("optim: batch_size and epochs must be >= 1, epoch_iterations >= 0 and lr > 0")
    if o.epoch_iterations == 0 and cfg.data.windows != "official":
        problems.append("optim.epoch_iterations = 0 (official epochs) needs data.windows: official")
    if sorted(o.milestones) != o.milestones:
        problems.append("optim.milestones must increase")
    if o.checkpoint_every < 1 or o.log_every < 1:
        problems.append("optim.checkpoint_every and log_every must be >= 1")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


def load_config(path: str) -> TrainConfig:
    """Read a ``.yaml``/``.yml`` (needs PyYAML) or ``.json`` training config."""
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read training config {path}: {exc}") from exc
    if os.path.splitext(path)[1].lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ConfigError(f"{path}: reading YAML needs PyYAML (pip install pyyaml==6.0.4), or write JSON") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    return config_from_dict(data or {}, path)
