#!/usr/bin/env python3
"""Regenerate config/wham.yaml from the node's parameter table (wham_ros/ros/params.py); --check compares."""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from wham_ros.ros.params import PARAMS  # noqa: E402


def render() -> str:
    lines = ["# wham_node parameters, generated from wham_ros/ros/params.py by tools/write_config.py.",
             "# checkpoint and body_model_dir are required: the official files are licence-restricted, never shipped.",
             "/**:", "  ros__parameters:"]
    for p in PARAMS:
        v = p.default
        value = ("true" if v else "false") if isinstance(v, bool) else f'"{v}"' if isinstance(v, str) else repr(v)
        bounds = f" [{', '.join(p.choices)}]" if p.choices else f" [{p.low:g}, {p.high:g}]" if p.low is not None else ""
        lines += [f"    # {p.description}{bounds}", f"    {p.name}: {value}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = os.path.join(ROOT, "config", "wham.yaml")
    if "--check" in sys.argv[1:]:
        with open(path) as fh:
            if fh.read() != render():
                sys.exit(f"{path} is out of date: run tools/write_config.py")
    else:
        with open(path, "w") as fh:
            fh.write(render())
