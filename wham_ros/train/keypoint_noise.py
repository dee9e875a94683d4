"""The 2D keypoint model of official stage 1: noise on the 3D joints (``VideoAugmentor``) and masking.

Noise (training facts 3.4) is added to the camera-frame COCO-17 joints in metres *before* projection,
n = bias + jitter + peak:

- bias ~ N(0, 0.1 sigma_b[j]) per joint and axis, constant over the sample;
- jitter ~ N(0, 0.05 sigma_j[j]) per frame, joint and axis;
- peak = 0.3 sigma_p[j] g where u p[j] < 0.005 (u ~ U[0, 1), per frame and joint), g ~ N(0, 1)^3 one
  vector shared by every peak of the sample.

The official statistics file ``coco_aug_dict.pth`` is **not published** (it ships in an archive on Google
Drive and the code fails without it). :data:`NOISE_TABLE` holds the values of the file of the same name
and layout that GVHMR publishes (tabulated in the training facts sheet); that they equal WHAM's is
unverified. They give bias sd 1-4 cm, jitter sd 0.5-2 cm, peaks of 2.4-12 cm on 1.7-10 % of frames.
Whoever has WHAM's file can use it instead (:func:`load_noise_table`, config ``augment.noise_table``).

Masking (facts 3.5): each keypoint is hidden with probability 0.03, then children of hidden parents are
hidden down the COCO tree; no whole-frame drops. Masked keypoints are still noised and still used for
the box.
"""
from __future__ import annotations

import torch

#: per COCO-17 joint: (sigma_b, sigma_j, sigma_p, p) from GVHMR's coco_aug_dict.pth (see module docstring)
_GROUPS = {
    (0,): (0.40, 0.2, 0.08, 0.05),                # nose
    (1, 2, 3, 4): (0.10, 0.1, 0.08, 0.05),        # eyes, ears
    (5, 6): (0.15, 0.3, 0.15, 0.10),              # shoulders
    (7, 8): (0.25, 0.2, 0.25, 0.20),              # elbows
    (9, 10): (0.35, 0.1, 0.40, 0.30),             # wrists
    (11, 12): (0.10, 0.4, 0.08, 0.10),            # hips
    (13, 14): (0.15, 0.2, 0.30, 0.20),            # knees
    (15, 16): (0.25, 0.1, 0.40, 0.30),            # ankles
}
NOISE_TABLE = torch.zeros(17, 4)
for _joints, _values in _GROUPS.items():
    NOISE_TABLE[list(_joints)] = torch.tensor(_values)
BIAS_SCALE, JITTER_SCALE, PEAK_SCALE, PEAK_THRESHOLD = 0.1, 0.05, 0.3, 0.005

#: COCO-17 parents for mask propagation (official KEYPOINTS.TREE): the nose needs both shoulders;
#: eyes follow the nose, ears their eye, elbows/wrists their arm, knees/ankles their leg
COCO_PARENTS = {0: (5, 6), 1: (0,), 2: (0,), 3: (1,), 4: (2,), 7: (5,), 8: (6,), 9: (7,), 10: (8,),
                13: (11,), 14: (12,), 15: (13,), 16: (14,)}


#: the statistics file's keys, in :data:`NOISE_TABLE`'s column order
TABLE_KEYS = ("bias", "jittering", "peak", "pmask")


def load_noise_table(path: str) -> torch.Tensor:
    """(17, 4) table from a ``coco_aug_dict.pth`` (keys bias, jittering, peak, pmask, each 17 values)."""
    from wham_ros.errors import CheckpointError
    from wham_ros.weights import read_file

    d = read_file(path)
    if not isinstance(d, dict) or any(k not in d for k in TABLE_KEYS):
        raise CheckpointError(f"{path}: not a keypoint noise table (needs keys {TABLE_KEYS})")
    cols = [torch.as_tensor(d[k], dtype=torch.float32).reshape(-1) for k in TABLE_KEYS]
    if any(c.numel() != 17 or not torch.isfinite(c).all() or (c < 0).any() for c in cols) or (cols[3] <= 0).any():
        raise CheckpointError(f"{path}: every entry must hold 17 finite non-negative values (pmask > 0)")
    return torch.stack(cols, -1)


def keypoint_noise(batch: int, length: int, gen: torch.Generator, scale: float = 1.0,
                   table: torch.Tensor = NOISE_TABLE) -> torch.Tensor:
    """3D noise (B, L, 17, 3), metres, for camera-frame COCO-17 joints; ``table`` (17, 4) as
    :data:`NOISE_TABLE` (sigma_b, sigma_j, sigma_p, p)."""
    sb, sj, sp, p = (table[:, i] for i in range(4))
    bias = torch.randn(batch, 1, 17, 3, generator=gen) * (BIAS_SCALE * sb)[:, None]
    jitter = torch.randn(batch, length, 17, 3, generator=gen) * (JITTER_SCALE * sj)[:, None]
    peaks = torch.rand(batch, length, 17, generator=gen) * p < PEAK_THRESHOLD
    g = torch.randn(batch, 1, 1, 3, generator=gen)
    peak = peaks[..., None] * (PEAK_SCALE * sp)[:, None] * g
    return scale * (bias + jitter + peak)


def keypoint_mask(batch: int, length: int, gen: torch.Generator, prob: float = 0.03) -> torch.Tensor:
    """Hidden keypoints (B, L, 17) bool: independent draws, then propagated from parents to children."""
    mask = torch.rand(batch, length, 17, generator=gen) < prob
    for child in sorted(COCO_PARENTS):
        for parent in COCO_PARENTS[child]:
            mask[..., child] |= mask[..., parent]
    return mask
