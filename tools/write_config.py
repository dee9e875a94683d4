#!/usr/bin/env python3
"""Regenerate config/wham.yaml and the README's parameter table from the node's parameter table
(wham_ros/ros/params.py); --check compares both instead of writing."""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from wham_ros.ros.params import PARAMS  # noqa: E402

TABLE_HEAD = "| parameter | default | meaning |\n|---|---|---|\n"
#: declared by the node itself (lifecycle start-up), not part of config/wham.yaml
AUTOSTART_ROW = "| `autostart` | true | configure and activate at start-up (False: wait for lifecycle transitions) |"


def _bounds(p) -> str:
    return f" [{', '.join(p.choices)}]" if p.choices else f" [{p.low:g}, {p.high:g}]" if p.low is not None else ""


def render() -> str:
    lines = ["# wham_node parameters, generated from wham_ros/ros/params.py by tools/write_config.py.",
             "# An empty checkpoint runs the embedded model wham_ros ships, an empty body_model_dir the free body",
             "# model install.sh builds: nothing to download. The official files: see wham-ros fetch-official.",
             "/**:", "  ros__parameters:"]
    for p in PARAMS:
        v = p.default
        value = ("true" if v else "false") if isinstance(v, bool) else f'"{v}"' if isinstance(v, str) else repr(v)
        lines += [f"    # {p.description}{_bounds(p)}", f"    {p.name}: {value}"]
    return "\n".join(lines) + "\n"


def render_table() -> str:
    def cell(v) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else '`""`' if v == "" else f"`{v}`"

    rows = [f"| `{p.name}` | {cell(p.default)} | {p.description}{_bounds(p)} |" for p in PARAMS]
    return TABLE_HEAD + "\n".join([*rows, AUTOSTART_ROW])


def readme_with_table(readme: str) -> str:
    start = readme.index(TABLE_HEAD)
    end = readme.index("\n\n", start)
    return readme[:start] + render_table() + readme[end:]


if __name__ == "__main__":
    outputs = {os.path.join(ROOT, "config", "wham.yaml"): lambda old: render(),
               os.path.join(ROOT, "README.md"): readme_with_table}
    for path, make in outputs.items():
        with open(path) as fh:
            old = fh.read()
        new = make(old)
        if "--check" in sys.argv[1:]:
            if old != new:
                sys.exit(f"{path} is out of date: run tools/write_config.py")
        elif new != old:
            with open(path, "w") as fh:
                fh.write(new)
