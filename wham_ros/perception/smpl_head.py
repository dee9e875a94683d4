"""HMR2.0's SMPL head: a cross-attention transformer decoder that reads the ViT tokens with one query.

Architecture of ``SMPLTransformerDecoderHead`` in 4DHumans (HMR2.0), as WHAM uses it:

* the query is a single token of size 1 holding zero, embedded by ``to_token_embedding`` (Linear 1 -> 1024)
  plus a learned ``pos_embedding`` (1, 1, 1024);
* 6 pre-norm layers, each self-attention, cross-attention to the image tokens (context 1280), feed-forward
  (1024 -> 1024 -> 1024, GELU); 8 heads of 64 (inner width 512), q/k/v projections without bias,
  plain ``LayerNorm`` (eps 1e-5) before every sub-layer, residual after it, **no** final norm;
* the output token (B, 1024) is WHAM's image feature. Three linear read-outs add to the mean
  parameters (one IEF step): ``decpose`` -> 24 joints x 6D (global orientation first),
  ``decshape`` -> 10 betas, ``deccam`` -> weak-perspective camera (s, tx, ty).

HMR2's 6D rotation is *column*-6D: the 6 numbers are the first two **columns** of the matrix,
``[R00 R10 R20 R01 R11 R21]``; this differs from WHAM's row-6D in :mod:`wham_ros.geometry.rotations`.
Parameter names follow the official checkpoint (``transformer.transformer.layers.<i>.<j>.{norm,fn}...``).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

N_JOINTS = 24          # SMPL joints regressed by HMR2: global orientation + 23 body joints
N_BETAS = 10
N_CAM = 3


@dataclass(frozen=True)
class DecoderConfig:
    dim: int = 1024
    depth: int = 6
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 1024
    context_dim: int = 1280     # width of the backbone tokens


#: the decoder of the released HMR2.0 models
HMR2_DECODER = DecoderConfig()


def hmr2_rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """HMR2 column-6D ``(..., 6)`` to rotation matrices ``(..., 3, 3)``.

    The first three numbers are the raw first column, the last three the raw second column;
    Gram-Schmidt makes them orthonormal (``F.normalize``, eps 1e-12) and the third column is
    their cross product.
    """
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def hmr2_matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` to HMR2 column-6D ``(..., 6)`` (first column, then second)."""
    return R[..., :, :2].transpose(-1, -2).reshape(*R.shape[:-2], 6)


class PreNorm(nn.Module):
    """``fn(LayerNorm(x), ...)``; the residual is added by the caller."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, H*D) -> (B, H, N, D)."""
    b, n, _ = x.shape
    return x.reshape(b, n, heads, -1).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, D) -> (B, N, H*D)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _output_projection(inner: int, dim: int) -> nn.Sequential:
    # index "0" as in the checkpoint; the training-time dropout that followed it is the identity here
    return nn.Sequential(OrderedDict([("0", nn.Linear(inner, dim))]))


class SelfAttention(nn.Module):
    """Multi-head self-attention over the query tokens (B, N, dim), scale dim_head**-0.5."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = _output_projection(heads * dim_head, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    """Queries (B, N, dim) attend to context tokens (B, M, context_dim)."""

    def __init__(self, dim: int, context_dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_kv = nn.Linear(context_dim, 2 * heads * dim_head, bias=False)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = _output_projection(heads * dim_head, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        k, v = (_split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        q = _split_heads(self.to_q(x), self.heads)
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        # indices as in the checkpoint, whose dropout at index 2 (and 4) is the identity at inference
        self.net = nn.Sequential(OrderedDict([("0", nn.Linear(dim, hidden)), ("1", nn.GELU()),
                                              ("3", nn.Linear(hidden, dim))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossAttentionTransformer(nn.Module):
    """``depth`` layers of [self-attention, cross-attention, feed-forward], each pre-norm with a residual."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PreNorm(cfg.dim, SelfAttention(cfg.dim, cfg.heads, cfg.dim_head)),
                PreNorm(cfg.dim, CrossAttention(cfg.dim, cfg.context_dim, cfg.heads, cfg.dim_head)),
                PreNorm(cfg.dim, FeedForward(cfg.dim, cfg.mlp_dim)),
            ]) for _ in range(cfg.depth))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for self_attn, cross_attn, feed_forward in self.layers:
            x = self_attn(x) + x
            x = cross_attn(x, context=context) + x
            x = feed_forward(x) + x
        return x


class TransformerDecoder(nn.Module):
    """Query tokens (B, N, 1) and context (B, M, context_dim) -> output tokens (B, N, dim)."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.to_token_embedding = nn.Linear(1, cfg.dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.transformer = CrossAttentionTransformer(cfg)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.to_token_embedding(query) + self.pos_embedding[:, :query.shape[1]]
        return self.transformer(x, context=context)


class SMPLHeadOutput(NamedTuple):
    feature: torch.Tensor           # (B, dim) decoder output token, before the read-outs
    global_orient: torch.Tensor     # (B, 3, 3)
    body_pose: torch.Tensor         # (B, 23, 3, 3)
    betas: torch.Tensor             # (B, 10)
    pred_cam: torch.Tensor          # (B, 3) weak-perspective (s, tx, ty) of the crop


class SMPLTransformerDecoderHead(nn.Module):
    """Backbone tokens (B, M, context_dim) -> feature and SMPL parameters (:class:`SMPLHeadOutput`).

    ``init_body_pose`` (1, 144), ``init_betas`` (1, 10) and ``init_cam`` (1, 3) are the mean
    parameters of ``smpl_mean_params.npz``; the checkpoint stores them as buffers, so they are loaded
    with the weights.
    """

    def __init__(self, cfg: DecoderConfig = HMR2_DECODER) -> None:
        super().__init__()
        self.cfg = cfg
        self.transformer = TransformerDecoder(cfg)
        self.decpose = nn.Linear(cfg.dim, N_JOINTS * 6)
        self.decshape = nn.Linear(cfg.dim, N_BETAS)
        self.deccam = nn.Linear(cfg.dim, N_CAM)
        self.register_buffer("init_body_pose", torch.zeros(1, N_JOINTS * 6))
        self.register_buffer("init_betas", torch.zeros(1, N_BETAS))
        self.register_buffer("init_cam", torch.zeros(1, N_CAM))

    def feature(self, tokens: torch.Tensor) -> torch.Tensor:
        """Backbone tokens (B, M, context_dim) -> the output of the single zero query (B, dim)."""
        query = tokens.new_zeros(tokens.shape[0], 1, 1)
        return self.transformer(query, context=tokens)[:, 0]

    def forward(self, tokens: torch.Tensor) -> SMPLHeadOutput:
        feature = self.feature(tokens)
        # one iterative-error-feedback step from the mean parameters
        pose6d = self.decpose(feature) + self.init_body_pose
        betas = self.decshape(feature) + self.init_betas
        cam = self.deccam(feature) + self.init_cam
        rotmats = hmr2_rot6d_to_matrix(pose6d.reshape(-1, N_JOINTS, 6))
        return SMPLHeadOutput(feature, rotmats[:, 0], rotmats[:, 1:], betas, cam)
