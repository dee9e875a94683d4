"""How outputs are compared with the official WHAM reference (tolerances of the parity fixtures' README).

Element-wise |mine - ref| <= atol[key] + rtol |ref|: float32 noise of the official code is
~1e-6, and ``feet`` carries ~10x more because the official formula cancels large terms.
"""
from __future__ import annotations

import torch

RTOL = 1e-5
ATOL = {"feet": 5e-5, "trans_cam": 2e-5, "trans_world": 2e-5, "vel_root": 5e-6, "vel_root_refined": 5e-6}
ATOL_DEFAULT = 1e-5


def compare_key(ref: torch.Tensor, mine: torch.Tensor, key: str, rtol: float = RTOL) -> tuple[bool, float]:
    """(within tolerance, max |diff|) of one output; a shape mismatch fails with an infinite difference."""
    if tuple(mine.shape) != tuple(ref.shape):
        return False, float("inf")
    r, diff = ref.double(), (mine.double() - ref.double()).abs()
    return bool((diff <= ATOL.get(key, ATOL_DEFAULT) + rtol * r.abs()).all()), float(diff.max())
