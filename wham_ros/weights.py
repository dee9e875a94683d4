"""Reading checkpoint files safely and loading them strictly into a module, for every network here.

Files are read with ``torch.load(..., weights_only=True)`` on the CPU; anything that goes
wrong (missing, truncated, corrupt, foreign file) becomes a :class:`CheckpointError` that
names the file. :func:`check_and_load` compares a state_dict with a module key by key and
lists every missing, unknown, mis-shaped or non-finite entry before anything is loaded.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from wham_ros.errors import CheckpointError

_MAX_LISTED = 25


def listing(names: Iterable[str]) -> str:
    """Sorted, comma-separated, cut after the first 25."""
    names = sorted(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def read_file(path: str) -> object:
    """The unpickled content of a torch checkpoint file (weights only, CPU)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # arbitrary bytes can make the unpickler raise anything (IndexError, KeyError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path!r}: the file is corrupt, truncated or not a torch checkpoint "
            f"({type(exc).__name__}: {first})") from exc


def check_state_dict(own: Mapping[str, torch.Tensor], state_dict: Mapping[str, object], source: str, *,
                     ignore: Iterable[str] = (), what: str = "") -> dict[str, torch.Tensor]:
    """``state_dict``'s tensors for exactly the keys of ``own``, cast to their dtypes, after checking them.

    ignore: key prefixes of ``state_dict`` that are expected and skipped (e.g. a discriminator).
    Raises :class:`CheckpointError` naming every missing, unknown, mis-shaped or non-finite entry.
    """
    ignore = tuple(ignore)
    not_names = [repr(k) for k in state_dict if not isinstance(k, str)]
    if not_names:
        raise CheckpointError(f"{source}: keys that are not parameter names: {listing(not_names)}")
    given = {k: v for k, v in state_dict.items() if not k.startswith(ignore)}
    missing, unexpected = set(own) - set(given), set(given) - set(own)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys: {listing(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys: {listing(unexpected)}")
        hint = f" - this is not a {what} checkpoint" if what and len(missing) > len(own) // 2 else ""
        raise CheckpointError(f"{source}: " + "; ".join(parts) + hint)
    not_tensor = [k for k, v in given.items() if not isinstance(v, torch.Tensor)]
    if not_tensor:
        raise CheckpointError(f"{source}: entries that are not tensors: {listing(not_tensor)}")
    wrong = [f"{k} {tuple(given[k].shape)} (expected {tuple(own[k].shape)})"
             for k in sorted(own) if given[k].shape != own[k].shape]
    if wrong:
        raise CheckpointError(f"{source}: wrong shapes: {listing(wrong)}")
    kind = [k for k in own if given[k].is_floating_point() != own[k].is_floating_point()]
    if kind:
        raise CheckpointError(f"{source}: integer/floating-point mismatch: {listing(kind)}")
    non_finite = [k for k in own if given[k].is_floating_point() and not torch.isfinite(given[k]).all()]
    if non_finite:
        raise CheckpointError(f"{source}: NaN or inf in {listing(non_finite)}")
    return {k: given[k].to(own[k].dtype).contiguous() for k in own}


def check_and_load(module: nn.Module, state_dict: Mapping[str, object], source: str, *,
                   ignore: Iterable[str] = (), what: str = "") -> None:
    """Load ``state_dict`` into ``module`` strictly after :func:`check_state_dict`.

    The tensors are assigned as they are, so ``module`` may have been built on the meta device.
    """
    checked = check_state_dict(module.state_dict(), state_dict, source, ignore=ignore, what=what)
    module.load_state_dict(checked, strict=True, assign=True)
