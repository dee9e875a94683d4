"""The default WHAM model wham_ros ships: trained here on the free mocap corpus, for the free body.

``checkpoint`` empty (node parameter, ``wham-ros run``) loads :data:`EMBEDDED_CHECKPOINT`. It is a
small network (its width and depth are saved in the file) trained by ``wham-ros train
config/train/corpus_stage1.yaml`` and exported by ``wham-ros export-model``; see the README's model
card. Licence: CC BY-SA 3.0 (it is derived from HDM05 motion capture), see ``LICENSE.md`` beside it.
"""
from __future__ import annotations

import os

from wham_ros.errors import CheckpointError

EMBEDDED_DIR = os.path.dirname(os.path.abspath(__file__))
EMBEDDED_CHECKPOINT = os.path.join(EMBEDDED_DIR, "wham_ros_embedded.pth.tar")


def resolve_checkpoint(path: str) -> str:
    """``path``, or the embedded model's file when ``path`` is empty."""
    if path:
        return path
    if not os.path.isfile(EMBEDDED_CHECKPOINT):
        raise CheckpointError(f"the embedded model {EMBEDDED_CHECKPOINT} is missing: the installation is "
                              f"incomplete (re-run ./install.sh) or give a checkpoint")
    return EMBEDDED_CHECKPOINT
