#!/usr/bin/env python3
"""Core benchmark: online step vs batch entry point vs naive re-running, memory, reduced precision.

    .venv/bin/python bench/bench_core.py [--quick] [--device cpu|cuda]

Prints figures only (no pass/fail). Uses the generated body model and weights
(same sizes as the official ones, so timings transfer); the reduced-precision
deviation is measured on the official parity case when ../shared/parity exists.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from wham_ros.model import build_network, wham_forward  # noqa: E402
from wham_ros.model.synthetic import make_test_state_dict, make_track_inputs, write_body_model  # noqa: E402
from wham_ros.stream import StreamEngine, stack_outputs  # noqa: E402
from wham_ros.stream.state import frame_input_from_official, track_init_from_official  # noqa: E402

PARITY = os.path.join(HERE, "..", "..", "shared", "parity")


def inputs(T: int, seed: int, device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in make_track_inputs(T, seed).items()}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_ms(net, n_tracks: int, frames: int, device: str, warmup: int = 5) -> float:
    """Median wall time of one engine step advancing ``n_tracks`` tracks."""
    data = [inputs(frames + warmup, 100 + k, device) for k in range(n_tracks)]
    engine = StreamEngine(net)
    for k, i in enumerate(data):
        engine.add_track(k, track_init_from_official(i))
    times = []
    for t in range(frames + warmup):
        batch = {k: frame_input_from_official(i, t) for k, i in enumerate(data)}
        sync(device)
        start = time.perf_counter()
        engine.step(batch)
        sync(device)
        if t >= warmup:
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def batch_ms(net, T: int, device: str, repeats: int = 3) -> float:
    """Median wall time of one batch forward over T frames."""
    i = inputs(T, 7, device)
    wham_forward(net, **inputs(8, 7, device))
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        wham_forward(net, **i)
        sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def state_bytes(engine: StreamEngine, track: int) -> int:
    state = engine._tracks[track]
    total = 0
    for value in vars(state).values():
        for t in (value if isinstance(value, tuple) else (value,)):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def deviation(mode: str, threads: int) -> None:
    """Reduced precision vs float32 on the official parity case: speed and relative L2 per output."""
    import reduced_precision

    if not os.path.isfile(os.path.join(PARITY, "inputs.pt")):
        print(f"  {mode}: parity fixtures not found at {PARITY}; skipped")
        return
    sys.path.insert(0, PARITY)
    import wham_parity_weights

    torch.set_num_threads(threads)
    net = build_network(wham_parity_weights.make_state_dict(7), os.path.join(PARITY, "body_models"))
    reduced_precision.apply(net, mode)
    d = torch.load(os.path.join(PARITY, "inputs.pt"), weights_only=True)
    ref = torch.load(os.path.join(PARITY, "outputs.pt"), weights_only=True)
    i = d["inputs"]
    engine = StreamEngine(net, return_y_up=True)
    engine.add_track(0, track_init_from_official(i))
    frames = [engine.step({0: frame_input_from_official(i, t)}).outputs[0] for t in range(i["x"].shape[1])]
    out = stack_outputs(frames, i["init_root"])
    keys = ("pose", "betas", "contact", "trans_cam", "feet", "vel_root", "vel_root_refined", "poses_root_world",
            "trans_world")
    rel = {k: float((out[k] - ref[k]).norm() / ref[k].norm()) for k in keys}
    worst = max(rel, key=rel.get)
    print(f"  {mode}: step 1 track {step_ms(net, 1, 30, 'cpu'):.1f} ms, 8 tracks {step_ms(net, 8, 15, 'cpu'):.1f} ms;"
          f" worst relative L2 {rel[worst]:.2%} ({worst})")
    print("        " + ", ".join(f"{k} {v:.2%}" for k, v in rel.items()))


def memory_child(folder: str, tracks: int) -> None:
    """Runs in a fresh process: load the network from files, step ``tracks`` tracks, print peak RSS."""
    torch.set_num_threads(1)
    net = build_network(os.path.join(folder, "ckpt.pth.tar"), folder)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step_ms(net, tracks, 10, "cpu")
    print(f"{loaded:.0f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def peak_memory(tracks: int) -> tuple[float, float]:
    """(peak RSS after loading, peak RSS after stepping) in MiB, measured in a fresh process."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        write_body_model(tmp)
        torch.save({"model": make_test_state_dict(0)}, os.path.join(tmp, "ckpt.pth.tar"))
        out = subprocess.run([sys.executable, __file__, "--memory-child", tmp, "--tracks", str(tracks)],
                             capture_output=True, text=True, check=True).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    ap.add_argument("--tracks", type=int, default=16, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer frames (for a smoke run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="1,2", help="torch thread counts to try (CPU)")
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.tracks)
        return
    frames = 10 if args.quick else 40
    device = args.device
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"device {device}" + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""))
    with tempfile.TemporaryDirectory() as tmp:
        net = build_network(make_test_state_dict(0), write_body_model(tmp), device=device)

    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        print(f"\n[fp32, torch threads {threads}]")
        steps = {n: step_ms(net, n, frames, device) for n in (1, 4, 8, 16)}
        for n, ms in steps.items():
            print(f"  online step, {n:2d} track(s): {ms:7.2f} ms/frame  ({ms / n:6.2f} ms per track)")
        b60 = batch_ms(net, 60, device)
        print(f"  batch entry point, T=60:   {b60 / 60:7.2f} ms/frame amortised ({b60:.0f} ms per call)")
        b300 = batch_ms(net, 300, device, repeats=1)
        print(f"  naive online at T=300 (re-run the 300-frame history each frame): {b300:.0f} ms/frame")
        print(f"  -> one track's step / batch amortised: {steps[1] / (b60 / 60):.2f}; "
              f"8 tracks / 1 track: {steps[8] / steps[1]:.2f}; naive / online at T=300: {b300 / steps[1]:.0f}x")

    engine = StreamEngine(net)
    i = inputs(1, 0, device)
    engine.add_track(0, track_init_from_official(i))
    print(f"\nmemory: per-track state {state_bytes(engine, 0) / 1024:.1f} KiB; "
          f"parameters {sum(p.numel() * p.element_size() for p in net.parameters()) / 2**20:.0f} MiB + "
          f"buffers {sum(b.numel() * b.element_size() for b in net.buffers()) / 2**20:.0f} MiB")
    if device == "cpu":
        for n in (1, 16):
            loaded, stepped = peak_memory(n)
            print(f"  fresh process, checkpoint + body model loaded: peak RSS {loaded:.0f} MiB; "
                  f"after stepping {n} track(s): {stepped:.0f} MiB")
    if device == "cuda":
        print(f"  CUDA peak allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    else:
        print("\n[reduced precision: fp16 is the shipped option, bf16 and int8 are not (see README); torch threads 1]")
        for mode in ("fp16", "bf16", "int8"):
            deviation(mode, 1)


if __name__ == "__main__":
    main()
