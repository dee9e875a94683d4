"""Reading Ultralytics YOLOv8 ``.pt`` files with ``torch.load(weights_only=True)`` and without ultralytics.

An Ultralytics checkpoint (e.g. the official ``yolov8x.pt`` that the WHAM demo uses) is a
pickled dict ``{'model': DetectionModel, 'ema': ..., 'train_args': dict, 'date': str, ...}``
whose model is a whole ``nn.Module`` object tree in half precision. Unpickling it normally
imports ultralytics and may run arbitrary code. Here every class such a file names is mapped,
under its exact pickled name, to an inert record (:class:`PickledObject`) that only stores the
state the pickle hands it; nothing is called or imported. The record tree is then walked
(``_modules``, ``_parameters``, ``_buffers``, as ``nn.Module.state_dict`` would) into a flat
state_dict with the Ultralytics names (``model.0.conv.weight``, ...).

Any other global in the file is refused and named in a :class:`CheckpointError`.
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

import torch

from wham_ros.errors import CheckpointError
from wham_ros.weights import listing, read_file

#: what the allowlist below covers; named in errors about foreign globals
KNOWN_TO_WORK = ("YOLOv8 detection files pickled by ultralytics 8.0.x-8.3.x, whose module paths the allowlist "
                 "names (e.g. the official yolov8x.pt)")

#: how a user who has ultralytics can produce a plain state_dict that :func:`read_yolo_state_dict` accepts
#: (before any ``predict`` call: prediction fuses Conv+BN in place and the BatchNorm entries disappear)
EXPORT_COMMAND = ("python -c \"import torch; from ultralytics import YOLO; "
                  "torch.save(YOLO('yolov8x.pt').model.float().state_dict(), 'yolov8x_state_dict.pt')\"")

_ULTRALYTICS_MODULES = ("Conv", "Concat", "C2f", "Bottleneck", "SPPF", "DFL", "Detect")
_SUBMODULE_OF = {"Conv": "conv", "Concat": "conv", "C2f": "block", "Bottleneck": "block", "SPPF": "block",
                 "DFL": "block", "Detect": "head"}
_TORCH_MODULES = ("conv.Conv2d", "batchnorm.BatchNorm2d", "activation.SiLU", "container.ModuleList",
                  "container.Sequential", "pooling.MaxPool2d", "upsampling.Upsample")

#: every global name a YOLOv8 detection checkpoint is known to pickle beyond torch's own safe set
ALLOWED_GLOBALS: tuple[str, ...] = (
    "ultralytics.nn.tasks.DetectionModel",
    # 8.0.x up to the split of ultralytics/nn/modules.py into a package
    *(f"ultralytics.nn.modules.{name}" for name in _ULTRALYTICS_MODULES),
    *(f"ultralytics.nn.modules.{_SUBMODULE_OF[name]}.{name}" for name in _ULTRALYTICS_MODULES),
    *(f"torch.nn.modules.{name}" for name in _TORCH_MODULES),
    # the model's training arguments (model.args); the package moved in 8.1
    "ultralytics.yolo.utils.IterableSimpleNamespace",
    "ultralytics.utils.IterableSimpleNamespace",
    # numpy scalars such as best_fitness, before and after numpy 2
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
    # reported in YOLOv8 files by users of torch>=2.6 (a pickled bound method); recorded, never called
    "builtins.getattr",
)


class PickledObject:
    """Inert stand-in for one pickled class: keeps constructor arguments and state, executes nothing.

    ``pickled_name`` is the ``module.qualname`` the file used. For an ``nn.Module`` the state is
    its ``__dict__`` (``_modules``, ``_parameters``, ``_buffers``, plain attributes).
    """

    pickled_name = ""

    def __init__(self, *args: object) -> None:
        # reached through REDUCE (numpy dtype/scalar, getattr); the arguments are data, kept as they are
        self.args = args

    def __setstate__(self, state: object) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["state"] = state

    def __repr__(self) -> str:
        return f"<pickled {self.pickled_name}>"


def _stand_in(full_name: str) -> type[PickledObject]:
    return type(full_name.rsplit(".", 1)[-1], (PickledObject,), {"pickled_name": full_name})


_STAND_INS: list[tuple[type[PickledObject], str]] = [(_stand_in(name), name) for name in ALLOWED_GLOBALS]


def _allowlist() -> AbstractContextManager:
    return torch.serialization.safe_globals(_STAND_INS)


def _foreign_globals(path: str) -> list[str]:
    """Globals in ``path`` outside torch's safe set and :data:`ALLOWED_GLOBALS` (empty if unknowable)."""
    try:
        with _allowlist():
            return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a corrupt file: the caller's error about it is the useful one
        return []


def _read(path: str) -> object:
    with _allowlist():
        try:
            return read_file(path)
        except CheckpointError as exc:
            foreign = _foreign_globals(path)
            if foreign:
                raise CheckpointError(
                    f"{path}: the pickle names globals outside the YOLOv8 allowlist: {listing(foreign)}. "
                    f"Known to work: {KNOWN_TO_WORK}. Other files can be exported to a plain state_dict with: "
                    f"{EXPORT_COMMAND}") from exc
            raise


def _is_module_record(obj: object) -> bool:
    return isinstance(obj, PickledObject) and isinstance(obj.__dict__.get("_modules"), Mapping)


def _flatten(record: PickledObject, prefix: str, out: dict[str, torch.Tensor], source: str) -> None:
    """Add the parameters and persistent buffers of ``record`` and its children, as ``state_dict`` names them."""
    state = record.__dict__
    skipped = state.get("_non_persistent_buffers_set", set())
    tensors = [*state.get("_parameters", {}).items(),
               *((k, v) for k, v in state.get("_buffers", {}).items() if k not in skipped)]
    for name, tensor in tensors:
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{source}: {prefix}{name} is a {type(tensor).__name__}, not a tensor")
        # plain tensors: check_state_dict casts and load_state_dict(assign=True) re-wraps parameters
        out[prefix + name] = tensor.detach()
    for name, child in state["_modules"].items():
        if child is None:
            continue
        if not _is_module_record(child):
            raise CheckpointError(f"{source}: {prefix}{name} is a {child!r}, not a pickled torch module")
        _flatten(child, f"{prefix}{name}.", out, source)


def read_yolo_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The weights of a YOLOv8 checkpoint as a flat state_dict with Ultralytics names.

    Accepts an Ultralytics ``.pt`` file (its ``ema`` model if present, else ``model``, as
    Ultralytics itself picks) or a plain ``{name: tensor}`` state_dict (see :data:`EXPORT_COMMAND`).
    Tensors keep the file's dtype (half for official files). Raises :class:`CheckpointError`.
    """
    content = _read(path)
    if not isinstance(content, Mapping):
        raise CheckpointError(f"{path}: holds a {type(content).__name__}, not a YOLOv8 checkpoint dict")
    if "model" not in content or isinstance(content["model"], torch.Tensor):
        bad = [str(k) for k, v in content.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
        if bad:
            raise CheckpointError(f"{path}: neither an Ultralytics checkpoint (no 'model' entry) nor a "
                                  f"state_dict of tensors (non-tensor entries: {listing(bad)})")
        return dict(content)
    model = content.get("ema") or content["model"]
    if not _is_module_record(model):
        raise CheckpointError(f"{path}: its 'model' entry is a {type(model).__name__}, not a pickled DetectionModel")
    out: dict[str, torch.Tensor] = {}
    _flatten(model, "", out, path)
    return out
