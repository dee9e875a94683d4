"""Speed of ``wham-ros run`` on the sports2d clip (figures only, no assertions).

    .venv/bin/python bench/bench_run.py [--frames 230] [--full PATH] [--threads 1]

Runs the whole job (read, front end, WHAM, writing results.mcap and the npz files, and with rendering the
overlay video) on the shipped 640x360 clip and on the full-resolution original (1768x994, from
``../shared/data/videos_people`` or ``--full``), with 1 person (``max_tracks`` 1) and 2, with and without
the overlay, and prints frames per second overall and milliseconds per frame for each stage. The machine
is whatever runs it: other processes slow it down, so the load average is printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wham_ros.offline.run import RunOptions, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP = os.path.join(ROOT, "data", "sports2d_640x360.mp4")
FULL = os.path.join(os.environ.get("WHAM_ROS_SHARED", os.path.join(ROOT, "..", "shared")), "data",
                    "videos_people", "sports2d_demo.mp4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=230, help="frames per run (the clip has 230)")
    ap.add_argument("--full", default=FULL, help="the full-resolution clip")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (node parameter torch_threads)")
    ap.add_argument("--only", default="", help="comma-separated subset of: 640,full")
    args = ap.parse_args()
    sizes = [("640x360", CLIP), ("1768x994", args.full)]
    if args.only:
        keep = set(args.only.split(","))
        sizes = [s for s in sizes if ("640" if s[0].startswith("640") else "full") in keep]
    print(f"{os.cpu_count()} CPUs, torch_threads {args.threads}, load average at start {os.getloadavg()[0]:.2f}")
    print("| input | people | overlay | fps | read | front end | WHAM | render | write (ms/frame) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, path in sizes:
        if not os.path.isfile(path):
            print(f"| {size} | - | - | missing {path} | | | | | |")
            continue
        for people in (1, 2):
            for overlay in (False, True):
                with tempfile.TemporaryDirectory() as out:
                    opts = RunOptions(params={"max_tracks": people, "torch_threads": args.threads},
                                      overlay=overlay, max_frames=args.frames, progress=False)
                    s = run(path, out, opts, say=lambda _: None)
                ms = {k: 1e3 * v / s.frames for k, v in s.stages.seconds.items()}
                print(f"| {size} | {people} ({len(s.people)} tracked) | {'yes' if overlay else 'no'} | "
                      f"{s.frames / s.seconds:.1f} | {ms['read']:.1f} | {ms['front end']:.1f} | {ms['WHAM']:.1f} | "
                      f"{ms['render']:.1f} | {ms['write']:.1f} |", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
