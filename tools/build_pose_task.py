#!/usr/bin/env python3
"""Assemble a MediaPipe ``pose_landmarker.task`` from the models shipped in the mediapipe 0.10.21 wheel.

Why this exists: mediapipe >= 0.10.30 (the only releases that work with NumPy 2, e.g. 1.2.3) ships no model files
and has only the Tasks API, which needs a ``.task`` bundle; the official bundles live on storage.googleapis.com,
which is not reachable offline. The 0.10.21 wheel on PyPI still carries the BlazePose detector
(``pose_detection.tflite``) and the "full" landmarker (``pose_landmark_full.tflite``). A ``.task`` file is just an
uncompressed ZIP holding them as ``pose_detector.tflite`` and ``pose_landmarks_detector.tflite``, but the legacy
files lack the TFLite metadata the Tasks API needs ("Input tensor has type float32: it requires specifying
NormalizationOptions metadata"). This script adds that metadata (image input normalisation plus one feature output
per output tensor) with the metadata-writer modules of the 0.10.21 wheel, because the writer in mediapipe 1.2.x is
broken (``No module named 'mediapipe.tasks.cc'``). Those modules are unpacked into a temporary folder and run in a
subprocess with ``PYTHONPATH`` pointing there, so an installed mediapipe is never imported alongside them.

The output is deterministic (fixed ZIP timestamps), so re-running gives a byte-identical file; it is written
atomically and its sha256 is printed. Needs this interpreter to have ``pip`` (unless ``--wheel`` is given) and
``flatbuffers``; the 0.10.21 wheel must match this interpreter (CPython 3.9-3.12), because the writer uses two small
compiled modules from it.

    python tools/build_pose_task.py OUTPUT.task [--wheel mediapipe-0.10.21-....whl]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MEDIAPIPE_VERSION = "0.10.21"
WORKER_FLAG = "--metadata-worker"

# The packages of the 0.10.21 wheel that the metadata writer needs (pure Python plus two pybind11 modules).
WRITER_PREFIXES = (
    "mediapipe/tasks/python/metadata/",
    "mediapipe/tasks/metadata/",
    "mediapipe/tasks/cc/metadata/python/",
)

# (member in the wheel, name inside the .task, normalisation mean, std, number of output tensors, sha256 of the member)
MODELS = (
    (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "pose_detector.tflite",
        127.5,
        127.5,
        2,
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "pose_landmarks_detector.tflite",
        0.0,
        255.0,
        5,
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
)

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class BuildError(RuntimeError):
    """A step failed; the message says which and why."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-3000:]
        raise BuildError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    run([*cmd, "--disable-pip-version-check", f"mediapipe=={MEDIAPIPE_VERSION}", "-d", str(dest)], "pip download")
    wheels = sorted(dest.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if not wheels:
        raise BuildError(f"pip download succeeded but left no mediapipe-{MEDIAPIPE_VERSION} wheel in {dest}")
    return wheels[0]


def unpack(wheel: Path, work: Path) -> Path:
    """Extract the two models into ``work`` and the metadata writer into ``work/pylib``; return ``work/pylib``."""
    pylib = work / "pylib"
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            for member, _, _, _, _, expected in MODELS:
                if member not in names:
                    raise BuildError(f"{wheel.name} has no {member}; is it really mediapipe {MEDIAPIPE_VERSION}?")
                data = zf.read(member)
                if sha256(data) != expected:
                    raise BuildError(f"{member} in {wheel.name} has sha256 {sha256(data)}, expected {expected}")
                (work / Path(member).name).write_bytes(data)
            writer = [n for n in names if n.startswith(WRITER_PREFIXES) and not n.endswith("/")]
            if not any(n.endswith("metadata_writers/metadata_writer.py") for n in writer):
                raise BuildError(f"{wheel.name} lacks mediapipe/tasks/python/metadata/metadata_writers")
            zf.extractall(pylib, writer)
    except zipfile.BadZipFile as exc:
        raise BuildError(f"{wheel} is not a readable wheel: {exc}") from exc
    # The wheel leaves out some package __init__ files (mediapipe/, mediapipe/tasks/, ...); add empty ones.
    for folder in [pylib / "mediapipe", *(p for p in (pylib / "mediapipe").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return pylib


def add_metadata(pylib: Path, src: Path, dst: Path, mean: float, std: float, outputs: int) -> None:
    """Run this script's worker mode under ``PYTHONPATH=pylib`` so only the 0.10.21 writer modules are imported."""
    env = {**os.environ, "PYTHONPATH": str(pylib)}
    cmd = [sys.executable, str(Path(__file__).resolve()), WORKER_FLAG, str(src), str(dst), str(mean), str(std)]
    run([*cmd, str(outputs)], f"adding metadata to {src.name}", env=env)


def metadata_worker(src: str, dst: str, mean: str, std: str, outputs: str) -> None:
    """Worker mode: write ``src`` with image-input and feature-output metadata to ``dst``."""
    import mediapipe  # must come from PYTHONPATH; checked below
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

    pythonpath = Path(os.environ["PYTHONPATH"]).resolve()
    if pythonpath not in Path(mediapipe.__file__).resolve().parents:
        raise BuildError(f"imported {mediapipe.__file__}, not the extracted writer under {pythonpath}")
    model = bytearray(Path(src).read_bytes())
    found = len(writer_utils.get_output_tensor_types(model))
    if found != int(outputs):
        raise BuildError(f"{src} has {found} output tensors, expected {outputs}")
    writer = metadata_writer.MetadataWriter.create(model)
    writer.add_image_input(norm_mean=[float(mean)], norm_std=[float(std)])
    for _ in range(found):
        writer.add_feature_output()
    content, _ = writer.populate()
    Path(dst).write_bytes(content)


def build(output: Path, wheel: Path | None) -> str:
    if importlib.util.find_spec("flatbuffers") is None:
        raise BuildError(f"the metadata writer needs flatbuffers: {sys.executable} -m pip install flatbuffers")
    with tempfile.TemporaryDirectory(prefix="build_pose_task_") as tmp:
        work = Path(tmp)
        if wheel is None:
            wheel = download_wheel(work)
        elif not wheel.is_file():
            raise BuildError(f"--wheel {wheel} does not exist")
        pylib = unpack(wheel, work)
        members: list[tuple[str, bytes]] = []
        for member, name, mean, std, outputs, _ in MODELS:
            dst = work / name
            add_metadata(pylib, work / Path(member).name, dst, mean, std, outputs)
            members.append((name, dst.read_bytes()))

        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as zf:
            for name, data in members:
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        os.replace(partial, output)
    return sha256(output.read_bytes())


def main() -> int:
    if len(sys.argv) == 7 and sys.argv[1] == WORKER_FLAG:
        try:
            metadata_worker(*sys.argv[2:])
        except BuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="where to write the .task file (e.g. pose_landmarker_full.task)")
    parser.add_argument("--wheel", type=Path, help=f"an already downloaded mediapipe-{MEDIAPIPE_VERSION} wheel")
    args = parser.parse_args()
    try:
        digest = build(args.output, args.wheel)
    except BuildError as exc:
        print(f"build_pose_task: error: {exc}", file=sys.stderr)
        return 1
    print(f"build_pose_task: wrote {args.output} ({args.output.stat().st_size} bytes)")
    print(f"sha256 {digest}  {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
