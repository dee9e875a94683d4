"""Load official WHAM checkpoints (``wham_vit_w_3dpw.pth.tar``, ``wham_vit_bedlam_w_3dpw.pth.tar``).

The trainer saves ``{'epoch', 'model', 'performance', 'optimizer'}`` with ``model`` the
network's state_dict. Loading here is strict on every non-``smpl.*`` key (unknown,
missing or mis-shaped keys raise :class:`CheckpointError` listing them). As in the
official loader, ``smpl.*`` tensors stored in the checkpoint override the body-model
files, except the smplx default-pose parameters and the evaluation regressors,
which the demo drops; a warning names every buffer whose values differ.

Checkpoints written by ``wham_ros.train`` add a top-level ``network`` entry (the
:class:`~wham_ros.model.network.NetworkConfig` as a dict: width, depth, integrator);
:func:`build_network` builds that network. Official checkpoints have none and get the
official configuration.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from wham_ros.errors import CheckpointError
from wham_ros.model.body_model import BodyModel, load_body_model
from wham_ros.model.embedded import resolve_checkpoint
from wham_ros.model.network import NetworkConfig, WhamNetwork
from wham_ros.model.precision import set_precision
from wham_ros.weights import check_state_dict, listing, read_file

log = logging.getLogger(__name__)

#: entries the official demo loader drops before loading (batch-5184 defaults, old regressors)
DEMO_DROPPED_KEYS = frozenset({
    "smpl.body_pose", "smpl.betas", "smpl.global_orient", "smpl.J_regressor_extra", "smpl.J_regressor_eval",
})


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did with the ``smpl.*`` entries."""

    smpl_overridden: list[str] = field(default_factory=list)
    smpl_differing: list[str] = field(default_factory=list)
    smpl_ignored: list[str] = field(default_factory=list)


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The ``model`` state_dict of a checkpoint file, read with ``weights_only=True`` on the CPU.

    A bare state_dict (name -> tensor) is accepted too. Raises :class:`CheckpointError`
    for missing, truncated, corrupt or foreign files.
    """
    return extract_state_dict(read_file(path), path)


def extract_state_dict(ckpt: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    if isinstance(ckpt, Mapping) and "model" in ckpt and isinstance(ckpt["model"], Mapping):
        sd = ckpt["model"]
    elif isinstance(ckpt, Mapping) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        sd = ckpt
    else:
        keys = list(ckpt)[:10] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        hint = " (this looks like a Lightning checkpoint of another model, e.g. HMR2.0)" if (
            isinstance(ckpt, Mapping) and "state_dict" in ckpt) else ""
        raise CheckpointError(f"{source}: no WHAM 'model' state_dict found (top level: {keys}){hint}")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entries that are not tensors: {listing(bad)}")
    return dict(sd)


#: top-level checkpoint entry holding the network's NetworkConfig (absent from official checkpoints)
CONFIG_KEY = "network"


def network_config(ckpt: object, source: str = "checkpoint") -> NetworkConfig:
    """The :class:`NetworkConfig` a checkpoint (its whole content) was saved with; official ones have none."""
    if isinstance(ckpt, Mapping) and CONFIG_KEY in ckpt and not isinstance(ckpt[CONFIG_KEY], torch.Tensor):
        return NetworkConfig.from_dict(ckpt[CONFIG_KEY], source)
    return NetworkConfig()


def load_checkpoint(net: WhamNetwork, checkpoint: str | Mapping[str, torch.Tensor], source: str | None = None
                    ) -> LoadReport:
    """Load a checkpoint path, checkpoint dict or state_dict into ``net`` (strict on non-``smpl.*`` keys).

    A checkpoint saved with a network config must match ``net``'s (:func:`build_network` builds the
    right network from it). ``source`` names the checkpoint in errors (default: the path).
    """
    source = source or (checkpoint if isinstance(checkpoint, str) else "state_dict")
    ckpt = read_file(checkpoint) if isinstance(checkpoint, str) else checkpoint
    config = network_config(ckpt, source)
    if isinstance(ckpt, Mapping) and CONFIG_KEY in ckpt and config != net.config:
        raise CheckpointError(f"{source}: saved for the network {config}, not {net.config} "
                              f"(build_network builds the saved one)")
    sd = extract_state_dict(ckpt, source)
    own = net.state_dict()
    what = "WHAM (ViT, demo configuration)" if net.config == NetworkConfig() else f"WHAM {net.config}"
    new_sd = check_state_dict({k: v for k, v in own.items() if not k.startswith("smpl.")}, sd, source,
                              ignore=("smpl.",), what=what)
    report = LoadReport()
    for k in sorted(k for k in sd if k.startswith("smpl.")):
        if k in DEMO_DROPPED_KEYS or k not in own or sd[k].shape != own[k].shape:
            report.smpl_ignored.append(k)
            continue
        value = sd[k].to(own[k].dtype)
        if not torch.equal(value, own[k]):
            report.smpl_differing.append(k)
        report.smpl_overridden.append(k)
        new_sd[k] = value
    if report.smpl_differing:
        log.warning("%s: checkpoint smpl.* tensors differ from the body-model files and take precedence "
                    "(as in the official loader): %s", source, ", ".join(report.smpl_differing))
    if report.smpl_ignored:
        log.info("%s: ignored smpl.* entries: %s", source, ", ".join(report.smpl_ignored))
    # assign: take the loaded tensors as they are (the network may have been built on the meta device)
    net.load_state_dict(new_sd, strict=False, assign=True)
    net.smpl.refresh_joint_subset()
    set_precision(net, "fp32")
    return report


def build_network(checkpoint: str | Mapping[str, torch.Tensor], body_model_dir: str,
                  device: str | torch.device = "cpu", precision: str = "fp32") -> WhamNetwork:
    """Body model from ``body_model_dir`` + WHAM weights from ``checkpoint``, in eval mode on ``device``.

    ``checkpoint`` empty is the embedded model (:mod:`wham_ros.model.embedded`).

    The network has the width and depth saved in the checkpoint (official checkpoints: the
    official ones). ``precision``: ``fp32`` (exact) or ``fp16`` step weights (see
    ``wham_ros.model.precision``).
    """
    if isinstance(checkpoint, str):
        checkpoint = resolve_checkpoint(checkpoint)
    source = checkpoint if isinstance(checkpoint, str) else "state_dict"
    ckpt = read_file(checkpoint) if isinstance(checkpoint, str) else checkpoint
    config = network_config(ckpt, source)
    body_model = load_body_model(body_model_dir)
    _check_trained_body(ckpt, body_model, source)
    with torch.device("meta"):          # no memory or time spent on random initial weights
        net = WhamNetwork(body_model, config)
    load_checkpoint(net, ckpt, source)
    return set_precision(net.to(device).eval(), precision)


def _check_trained_body(ckpt: object, body_model: BodyModel, source: str) -> None:
    """Warn when a network trained here runs on a body other than the one it was trained on: its shape
    coefficients (betas) then mean other shapes, and its mesh has another size."""
    trained = ckpt.get("body_model") if isinstance(ckpt, Mapping) else None
    if not isinstance(trained, Mapping) or "vertices" not in trained:
        return
    if int(trained["vertices"]) != body_model.num_vertices:
        log.warning("%s was trained on a body model with %s vertices, not this one (%d): its betas describe "
                    "shapes of that body", source, trained["vertices"], body_model.num_vertices)
