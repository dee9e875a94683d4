#!/usr/bin/env python3
"""Point the CMake exports of pip-installed ROS 2 message wheels at this interpreter's headers.

The ``ros-*`` wheels on PyPI were built in a manylinux container, and their
``*__rosidl_generator_pyExport.cmake`` files hard-code that container's Python and
NumPy include folders (``/opt/python/cp311-cp311/...``). Building any interface
package against them fails until those paths are rewritten to the local ones.
Idempotent; run it after the final NumPy is installed.

    python tools/fix_ros_wheel_cmake.py [PREFIX]      (default: sys.prefix)
"""
from __future__ import annotations

import glob
import os
import re
import sys
import sysconfig

import numpy

PYTHON_INCLUDE = re.compile(r"[^\";]*/include/python3\.\d+")
NUMPY_INCLUDE = re.compile(r"[^\";]*/site-packages/numpy/(?:_)?core/include")


def main() -> int:
    prefix = sys.argv[1] if len(sys.argv) > 1 else sys.prefix
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = 0
    for path in glob.glob(os.path.join(prefix, "share", "*", "cmake", "*rosidl_generator_py*Export*.cmake")):
        with open(path) as fh:
            text = fh.read()
        new = NUMPY_INCLUDE.sub(numpy_include, PYTHON_INCLUDE.sub(python_include, text))
        if new != text:
            with open(path, "w") as fh:
                fh.write(new)
            changed += 1
    print(f"fix_ros_wheel_cmake: rewrote {changed} CMake export file(s) under {prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
