"""The plain ViT backbone shared by ViTPose (2D keypoints) and HMR2.0 (image features, first pose).

Both official models use the same ViT-H/16 for 256x192 person crops: embed 1280, depth 32,
16 heads, MLP ratio 4, biased qkv, pre-norm blocks, LayerNorm eps 1e-6, a final
``last_norm``. Two details of their patch embedding matter for loading and shapes:
the patch convolution pads by 2 pixels (so 256x192 still gives 16x12 tokens), and the
learned position table has one extra leading row (a class-token slot that no token
uses), which is added to every patch. Parameter names follow the official checkpoints
(``patch_embed.proj``, ``pos_embed``, ``blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
``last_norm``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: the ImageNet statistics both ViT-H models normalise their RGB input with (per channel, on 0..1 values)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ViTConfig:
    image_size: tuple[int, int] = (256, 192)      # (height, width)
    patch_size: int = 16
    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.0

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (Hp, Wp); the 2-pixel padding of the patch convolution keeps it at size // patch."""
        h, w = self.image_size
        pad, p = 2, self.patch_size
        return (h + 2 * pad - p) // p + 1, (w + 2 * pad - p) // p + 1


#: ViT-H/16 of ViTPose-H and HMR2.0
VIT_HUGE = ViTConfig()


class PatchEmbedding(nn.Module):
    """Image (B, 3, H, W) -> tokens (B, Hp*Wp, C) by one strided convolution."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size, padding=2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.proj(image).flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention over tokens (B, N, C)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.attn = SelfAttention(cfg.embed_dim, cfg.num_heads)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.mlp = FeedForward(cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Person crop (B, 3, 256, 192), ImageNet-normalised RGB -> feature map (B, C, Hp, Wp)."""

    def __init__(self, cfg: ViTConfig = VIT_HUGE) -> None:
        super().__init__()
        self.cfg = cfg
        hp, wp = cfg.grid
        self.patch_embed = PatchEmbedding(cfg)
        self.pos_embed = nn.Parameter(torch.zeros(1, hp * wp + 1, cfg.embed_dim))
        self.blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.depth))
        self.last_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)

    def tokens(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, Hp*Wp, C) after the last norm."""
        x = self.patch_embed(image)
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        return self.last_norm(x)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        hp, wp = self.cfg.grid
        x = self.tokens(image)
        return x.transpose(1, 2).reshape(x.shape[0], -1, hp, wp)
