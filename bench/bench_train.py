"""CPU training throughput of the stage-1 trainer for several network widths (figures only, no assertions).

    .venv/bin/python bench/bench_train.py [--widths 512x3,256x3,128x3,128x2,64x2] [--batch 64] [--iters 4]
                                          [--threads 2] [--corpus DIR]

Each width is ``d_embed x n_layers`` (the refiner's hidden width follows d_embed, no integrator: stage 1).
Per width: one warm-up iteration, then ``--iters`` timed ones of sample building (the corpus through
virtual cameras) and of the step (train forward, loss, backward, clip, Adam). Prints the median seconds
per iteration, samples/s and the hours 10k iterations would take. The machine is whatever runs it:
other processes on it slow it down, so say what else ran.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wham_ros.train.config import config_from_dict
from wham_ros.train.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="512x3,256x3,128x3,128x2,64x2")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", default="", help="corpus folder (default: the installed one)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} threads, batch {args.batch}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print("| d_embed x layers | parameters | samples s/it | step s/it | samples/s | h per 10k it |")
    print("|---|---|---|---|---|---|")
    for spec in args.widths.split(","):
        width, layers = (int(v) for v in spec.lower().split("x"))
        cfg = config_from_dict({
            "network": {"d_embed": width, "n_layers": layers, "refiner_hidden": width, "integrator": False},
            "data": {"path": args.corpus},
            "optim": {"batch_size": args.batch, "epoch_iterations": args.iters + 1, "epochs": 1,
                      "threads": args.threads}})
        with tempfile.TemporaryDirectory() as out:
            trainer = Trainer(cfg, out)
            params = sum(p.numel() for p in trainer.params)
            batches = trainer.plan.epoch(0)
            data_s, step_s = [], []
            for i, windows in enumerate(batches):
                t0 = time.perf_counter()
                batch = trainer.batch(0, i, windows)
                t1 = time.perf_counter()
                trainer.step(batch, 5, i)
                t2 = time.perf_counter()
                if i:
                    data_s.append(t1 - t0)
                    step_s.append(t2 - t1)
        d, s = statistics.median(data_s), statistics.median(step_s)
        print(f"| {width} x {layers} | {params / 1e6:.2f} M | {d:.2f} | {s:.2f} | {args.batch / (d + s):.1f} | "
              f"{(d + s) * 1e4 / 3600:.1f} |", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
