"""Accuracy of a trained model on the held-out subjects, static and moving virtual cameras, against two baselines.

    .venv/bin/python bench/accuracy.py --model RUN/model.pth.tar --config config/train/corpus_stage1.yaml
                                       [--sequences N] [--threads N]

The model file is a training output (``model.pth.tar``, or the resume state ``checkpoint.pth.tar``: the same
weights), loaded by ``build_network`` as the node loads it. The held-out sequences are the config's validation
sequences (its ``data.holdout_subjects`` through the fixed cameras of its ``val`` section), once with every
camera static and once with every camera moving; ``--sequences`` keeps N of them per set, spread evenly.
Baseline (a) takes its mean pose from the config's training split. See ``wham_ros/train/accuracy.py`` for
the definitions. Prints the held-out subjects, the set sizes, the machine, the table and the target checks.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wham_ros.model import build_network
from wham_ros.model.body_model import resolve_body_model_dir
from wham_ros.train.accuracy import (
    MeanPoseBaseline,
    check_held_out,
    held_out_from_config,
    held_out_sets,
    measure,
    set_summary,
    table,
    target_checks,
)
from wham_ros.train.config import load_config
from wham_ros.weights import read_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model.pth.tar (or checkpoint.pth.tar) of a training run")
    ap.add_argument("--config", required=True, help="the training config (its held-out subjects and val section)")
    ap.add_argument("--sequences", type=int, default=None, help="at most N sequences per camera set (default all)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--fit", type=int, default=0, metavar="N",
                    help="also the model on N clips of the TRAINING subjects (seen in training: how well it fits, "
                         "to tell a data shortage from an under-trained model; never an accuracy figure)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at start, "
          f"torch {torch.__version__} on {args.threads} threads")

    cfg = load_config(args.config)
    ckpt = read_file(args.model)
    note = check_held_out(ckpt, cfg)
    body_dir = resolve_body_model_dir(cfg.data.body_model)
    net = build_network(args.model, body_dir)
    print(f"model: {args.model} (epoch {ckpt.get('epoch', '?')}, step {ckpt.get('step', '?')}), {net.config}; "
          f"{note}")

    held = held_out_from_config(cfg, net.smpl, body_dir, args.sequences)
    baseline = MeanPoseBaseline.from_training(net.smpl, held.train_clips)
    built = time.perf_counter()
    print(f"held-out subjects: {', '.join(held.subjects)}; baseline a's mean pose from {len(held.train_clips)} "
          f"training clips ({sum(c.frames for c in held.train_clips)} frames)")
    for camera, seqs in held.sets.items():
        s = set_summary(seqs)
        print(f"  {camera} cameras: {s['sequences']} sequences, {s['frames']} frames, {s['rte_sequences']} with a "
              f"true path >= 1 m (RTE), max |cam_angvel| {s['max_angvel']:.2g}")

    results = measure(net, baseline, held.sets)
    done = time.perf_counter()
    print()
    print(table(results))
    print()
    checks = target_checks(results)
    print(f"targets: {sum(c.met for c in checks)} of {len(checks)} met")
    for c in checks:
        print(f"- {c.line()}")
    if args.fit:
        seen = held_out_sets(net.smpl, held.train_clips, cfg.augment, cfg.val.min_frames, cfg.val.seed,
                             limit=args.fit)
        fit = measure(net, baseline, seen)
        print(f"\nfit on the training subjects ({len(seen['moving'])} training clips, the same cameras and noise; "
              "seen in training, not an accuracy figure):")
        print(table(fit))
    print(f"\nruntime: {done - started:.1f} s ({built - started:.1f} s loading and building the sets, "
          f"{done - built:.1f} s measuring); load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
