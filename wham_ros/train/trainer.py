"""The stage-1 training loop (official ``train.py`` / ``lib/core/trainer.py``, training facts 1), resumable.

Per iteration: a batch of stage-1 samples, the training forward of the engine's own network, the loss,
backward, the global gradient norm clipped to ``grad_clip``, an Adam step. Per epoch: validation when due,
then the MultiStepLR step, then the resume checkpoint. Differences from the official loop:

- iterations, not only epochs, are resumable: the checkpoint holds the weights, Adam's moments, the LR
  schedule and the position, and every random draw (samples, dropout) is seeded from (seed, epoch,
  iteration), so a resumed run is the uninterrupted run (the official resume restarts the scheduler and
  the loss's epoch counter);
- no best-model selection: validation runs on held-out *subjects* and only reports (choosing weights on
  them would be tuning on them); the last weights are the result.

Run folder: ``checkpoint.pth.tar`` (resume state), ``model.pth.tar`` (weights and network config, what
``build_network`` and the node load), ``train.csv`` (one row per ``log_every`` iterations), ``val.csv``,
``loss_curve.png`` and ``config.json`` (the resolved config).
"""
from __future__ import annotations

import copy
import csv
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from wham_ros.errors import WhamError
from wham_ros.mocap.corpus import file_digest
from wham_ros.model.body_model import load_body_model, resolve_body_model_dir
from wham_ros.model.checkpoint import CONFIG_KEY, extract_state_dict, load_checkpoint
from wham_ros.model.forward import train_forward
from wham_ros.model.network import WhamNetwork
from wham_ros.train.amass import load_amass
from wham_ros.train.clips import MotionClip, default_corpus_dir, load_corpus_clips, split_by_subject
from wham_ros.train.config import TrainConfig
from wham_ros.train.keypoint_noise import NOISE_TABLE, load_noise_table
from wham_ros.train.losses import Stage1Loss
from wham_ros.train.samples import Stage1Batch, build_batch
from wham_ros.train.validate import METRICS, evaluate, summary, validation_set
from wham_ros.train.windows import WindowPlan
from wham_ros.weights import check_state_dict, read_file

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pth.tar"
MODEL = "model.pth.tar"
TERMS = ("2d", "3d", "3d_nn", "casc", "pose", "betas", "contact", "root", "root_ref", "camera", "sliding",
         "sliding_ref")
TRAIN_COLUMNS = ("epoch", "step", "lr", "loss", *TERMS, "grad_norm", "seconds")
VAL_COLUMNS = ("epoch", "step", *METRICS)


class TrainingError(WhamError):
    """Training cannot start or continue (a run folder in the way, a changed recipe, a NaN loss)."""


def derived_seed(*parts: int) -> int:
    """A 32-bit seed from integers (seed, epoch, iteration, purpose): independent streams per draw."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint32)[0])


def load_clips(cfg: TrainConfig, body_dir: str) -> list[MotionClip]:
    """Every clip of the configured data (corpus or AMASS folder)."""
    if cfg.data.kind == "corpus":
        return load_corpus_clips(cfg.data.path or default_corpus_dir(), body_dir)
    return load_amass(cfg.data.path)


def initial_weights(net: WhamNetwork, path: str) -> None:
    """Load fine-tuning weights (an official or a wham-ros checkpoint) into ``net``.

    A network without an integrator leaves a checkpoint's integrator out; everything else is strict.
    """
    sd = extract_state_dict(read_file(path), path)
    if not net.config.integrator:
        sd = {k: v for k, v in sd.items() if not k.startswith("integrator.")}
    load_checkpoint(net, sd, path)


def network_state(net: WhamNetwork) -> dict[str, torch.Tensor]:
    """The trained parameters, on the CPU; the body model's buffers stay with the body model files."""
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if not k.startswith("smpl.")}


def _save(obj: dict, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _keep_rows(path: str, last_step: int) -> None:
    """Drop CSV rows logged after ``last_step`` (an interrupted run wrote them past its checkpoint)."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    step = rows[0].index("step")
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0]] + [r for r in rows[1:] if int(r[step]) <= last_step])


def _append(path: str, columns: tuple[str, ...], row: dict) -> None:
    new = not os.path.isfile(path)
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in columns})


def plot_curves(folder: str) -> str | None:
    """``loss_curve.png`` from train.csv and val.csv; None when matplotlib is missing or nothing is logged."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = _read_rows(os.path.join(folder, "train.csv"))
    if not rows:
        return None
    val = _read_rows(os.path.join(folder, "val.csv"))
    fig, axes = plt.subplots(1, 2 if val else 1, figsize=(13 if val else 7, 4.5), squeeze=False)
    ax = axes[0, 0]
    ax.set_prop_cycle(color=plt.cm.tab20.colors)          # 13 curves: the default cycle repeats after 10
    steps = np.array([float(r["step"]) for r in rows])
    for key in ("loss", *TERMS):
        y = np.array([float(r[key]) if r[key] else np.nan for r in rows])
        if np.nansum(np.abs(y)) > 0:
            ax.plot(steps, y, lw=2.0 if key == "loss" else 0.8, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_title("training loss (weighted terms)")
    ax.legend(fontsize=7, ncol=2)
    if val:
        ax = axes[0, 1]
        vsteps = [float(r["step"]) for r in val]
        for key in ("mpjpe", "pa_mpjpe", "w_mpjpe100", "wa_mpjpe100"):
            ax.plot(vsteps, [float(r[key]) for r in val], marker="o", label=key)
        ax.set_xlabel("iteration")
        ax.set_ylabel("mm")
        ax.set_title("held-out subjects")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(folder, "loss_curve.png")
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _read_rows(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Progress:
    """Where a run is: the epoch, the next iteration within it and the iterations done in total."""

    epoch: int = 0
    iteration: int = 0
    step: int = 0


class Trainer:
    """Stage-1 training of ``cfg`` into the run folder ``out`` (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, out: str) -> None:
        self.cfg, self.out = cfg, out
        o = cfg.optim
        if o.threads:
            torch.set_num_threads(o.threads)
        self.device = torch.device(o.device)
        self.body_dir = resolve_body_model_dir(cfg.data.body_model)
        self.body_model = load_body_model(self.body_dir)
        clips = load_clips(cfg, self.body_dir)
        self.train_clips, self.val_clips = split_by_subject(clips, cfg.data.holdout_subjects)
        self.plan = WindowPlan(self.train_clips, cfg.data.windows, o.batch_size, o.epoch_iterations,
                               (cfg.augment.speed_min, cfg.augment.speed_max), o.seed)
        torch.manual_seed(o.seed)
        # samples are built on the CPU; a network elsewhere gets its own copy of the body
        net_body = self.body_model if self.device.type == "cpu" else copy.deepcopy(self.body_model)
        self.net = WhamNetwork(net_body, cfg.network)
        if o.init_checkpoint:
            initial_weights(self.net, o.init_checkpoint)
        self.net.to(self.device).train()
        self.params = [p for n, p in self.net.named_parameters() if not n.startswith("smpl.")]
        self.optimizer = torch.optim.Adam(self.params, lr=o.lr, betas=(0.9, 0.999), weight_decay=0.0)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, o.milestones, o.gamma)
        self.noise_table = load_noise_table(cfg.augment.noise_table) if cfg.augment.noise_table else NOISE_TABLE
        self.loss = Stage1Loss(cfg.loss)
        self.progress = Progress()
        #: the latest held-out metrics, saved with every checkpoint from then on
        self.performance: dict[str, float] = {}
        self._val_set = None

    # ---- one iteration -------------------------------------------------------------------------------
    def batch(self, epoch: int, iteration: int, windows: list) -> Stage1Batch:
        """The samples of (epoch, iteration), drawn from their own seed."""
        gen = torch.Generator().manual_seed(derived_seed(self.cfg.optim.seed, epoch, iteration, 0))
        return build_batch(self.body_model, self.train_clips, windows, gen, self.cfg.augment,
                           noise_table=self.noise_table)

    def step(self, batch: Stage1Batch, epoch: int, iteration: int) -> dict[str, float]:
        """Forward, loss, backward, clip, Adam step; returns the logged values."""
        torch.manual_seed(derived_seed(self.cfg.optim.seed, epoch, iteration, 1))   # dropout
        batch = batch.to(self.device)
        pred = train_forward(self.net, **batch.inputs())
        total, terms = self.loss(pred, batch, epoch)
        if not torch.isfinite(total):
            raise TrainingError(f"loss is {float(total)} at epoch {epoch}, iteration {iteration} (terms {terms})")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip)
        self.optimizer.step()
        return {"loss": float(total.detach()), **terms, "grad_norm": float(grad_norm)}

    # ---- checkpoints ---------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {CONFIG_KEY: self.cfg.network.to_dict(), "recipe": self.cfg.recipe(),
                "body_model": {"vertices": self.body_model.num_vertices,
                               "sha256_16": file_digest(os.path.join(self.body_dir, "smpl", "SMPL_NEUTRAL.pkl"))}}

    def save(self) -> None:
        """The resume checkpoint and the model file, for the current progress."""
        p = self.progress
        common = {"epoch": p.epoch, "iteration": p.iteration, "step": p.step, "model": network_state(self.net),
                  "performance": self.performance, **self._meta()}
        _save({**common, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
              os.path.join(self.out, CHECKPOINT))
        _save(common, os.path.join(self.out, MODEL))

    def resume(self) -> None:
        """Continue from the run folder's checkpoint; the recipe must be the one it was started with."""
        path = os.path.join(self.out, CHECKPOINT)
        ckpt = read_file(path)
        saved, now = ckpt.get("recipe") or {}, self.cfg.recipe()
        if saved != now:
            changed = [f"{s}.{k}" for s, section in now.items() for k, v in section.items()
                       if (saved.get(s) or {}).get(k) != v]
            raise TrainingError(f"{path}: the run was started with another recipe (changed: {changed}); "
                                f"use the same config or another output folder")
        # copied into the parameters the optimiser holds (loading by assignment would replace them)
        own = {k: v for k, v in self.net.state_dict().items() if not k.startswith("smpl.")}
        self.net.load_state_dict(check_state_dict(own, ckpt["model"], path), strict=False)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.progress = Progress(ckpt["epoch"], ckpt["iteration"], ckpt["step"])
        self.performance = dict(ckpt.get("performance") or {})
        for name in ("train.csv", "val.csv"):
            _keep_rows(os.path.join(self.out, name), self.progress.step)

    # ---- the loop ------------------------------------------------------------------------------------
    def validation(self) -> list:
        if self._val_set is None:
            v = self.cfg.val
            self._val_set = validation_set(self.body_model, self.val_clips, self.cfg.augment, v.min_frames, v.seed,
                                           self.noise_table)
        return self._val_set

    def validate(self) -> dict[str, float]:
        sequences = self.validation()
        if not sequences:
            return {}
        for seq in sequences:
            seq.batch = seq.batch.to(self.device)
        result = evaluate(self.net, sequences)
        _append(os.path.join(self.out, "val.csv"), VAL_COLUMNS,
                {"epoch": self.progress.epoch, "step": self.progress.step, **result})
        return result

    def _due(self, epoch: int) -> bool:
        every = self.cfg.val.every_epochs
        return epoch == self.cfg.optim.epochs - 1 or (every > 0 and (epoch + 1) % every == 0)

    def run(self, max_minutes: float | None = None, max_steps: int | None = None,
            say: Callable[[str], None] = print) -> bool:
        """Train until the last epoch (True) or until ``max_minutes`` / ``max_steps`` iterations of this
        call have passed (False; the checkpoint is written, the same command continues)."""
        cfg, o = self.cfg, self.cfg.optim
        os.makedirs(self.out, exist_ok=True)
        with open(os.path.join(self.out, "config.json"), "w") as fh:
            json.dump(cfg.to_dict(), fh, indent=1)
        per_epoch = self.plan.iterations()
        total = o.epochs * per_epoch
        say(f"train: {len(self.train_clips)} training clips, {len(self.val_clips)} held-out "
            f"({', '.join(cfg.data.holdout_subjects) or 'none'}); {per_epoch} iterations x {o.epochs} epochs, "
            f"batch {o.batch_size}, network {cfg.network}")
        bar = _Bar(total, self.progress.step)
        started, done = time.perf_counter(), 0
        try:
            while self.progress.epoch < o.epochs:
                p = self.progress
                batches = self.plan.epoch(p.epoch)
                while p.iteration < len(batches):
                    tick = time.perf_counter()
                    values = self.step(self.batch(p.epoch, p.iteration, batches[p.iteration]), p.epoch, p.iteration)
                    p.iteration += 1
                    p.step += 1
                    done += 1
                    values["seconds"] = time.perf_counter() - tick
                    if p.step % o.log_every == 0 or p.iteration == len(batches):
                        _append(os.path.join(self.out, "train.csv"), TRAIN_COLUMNS,
                                {"epoch": p.epoch, "step": p.step, "lr": self.optimizer.param_groups[0]["lr"],
                                 **values})
                    bar.update(values)
                    out_of_time = max_minutes is not None and time.perf_counter() - started > 60 * max_minutes
                    if out_of_time or (max_steps is not None and done >= max_steps):
                        self.save()
                        say(f"train: paused at epoch {p.epoch}, iteration {p.iteration} (step {p.step}); "
                            f"the same command with --resume continues")
                        return False
                    if p.step % o.checkpoint_every == 0:
                        self.save()
                if self._due(p.epoch) and self.val_clips:
                    self.performance = self.validate()
                    say(f"train: epoch {p.epoch} held-out: {summary(self.performance)}")
                    plot_curves(self.out)
                with warnings.catch_warnings():
                    # a run resumed just after an epoch's last iteration steps the schedule before any
                    # optimiser step of its own; the order of the two is the uninterrupted run's
                    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
                    self.scheduler.step()
                p.epoch, p.iteration = p.epoch + 1, 0
                self.save()
        finally:
            bar.close()
        png = plot_curves(self.out)
        say(f"train: done, {self.progress.step} iterations; weights {os.path.join(self.out, MODEL)}"
            + (f", curves {png}" if png else ""))
        return True


class _Bar:
    """tqdm when it is installed, else a line every 5 % of the run."""

    def __init__(self, total: int, initial: int) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            self._tqdm, self.total, self.n = None, total, initial
            self._next = initial
        else:
            self._tqdm = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True)

    def update(self, values: dict[str, float]) -> None:
        if self._tqdm is not None:
            self._tqdm.set_postfix(loss=f"{values['loss']:.3f}", s_it=f"{values['seconds']:.2f}", refresh=False)
            self._tqdm.update(1)
            return
        self.n += 1
        if self.n >= self._next:
            print(f"  {self.n}/{self.total} iterations, loss {values['loss']:.4f}, {values['seconds']:.2f} s/it",
                  flush=True)
            self._next = self.n + max(1, math.ceil(self.total / 20))

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()

