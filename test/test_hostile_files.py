"""Files a user names must never run code when read: every loader that unpickles, fed payload files."""
from __future__ import annotations

import os
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch

from wham_ros.errors import BodyModelError, CheckpointError


class _Payload:
    """Unpickling this calls ``func(*args)``: the classic pickle code-execution vector."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: str) -> dict[str, _Payload]:
    """Payloads that would create ``marker`` if any of them ran."""
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "builtins.exec": _Payload(exec, f"open({marker!r}, 'w').close()"),
        "builtins.eval": _Payload(eval, f"open({marker!r}, 'w')"),
        "shutil.copyfile": _Payload(shutil.copyfile, __file__, marker),
    }


def _smpl_dict(payload) -> dict:
    from wham_ros.model.synthetic import build_body_model

    smpl, _ = build_body_model()
    smpl = dict(smpl)
    smpl["bs_style"] = payload           # anywhere in the file: the official one has a few string fields
    return smpl


@pytest.mark.parametrize("name", list(_payloads("x")))
@pytest.mark.parametrize("protocol", [2, 4])
def test_smpl_pickle_payload_is_refused_by_name_and_never_runs(tmp_path, name, protocol):
    from wham_ros.model.body_model import load_body_model
    from wham_ros.model.synthetic import write_body_model

    marker = str(tmp_path / "pwned")
    folder = write_body_model(str(tmp_path / "bm"))
    with open(os.path.join(folder, "smpl", "SMPL_NEUTRAL.pkl"), "wb") as fh:
        pickle.dump(_smpl_dict(_payloads(marker)[name]), fh, protocol=protocol)
    with pytest.raises(BodyModelError, match=r"refused global"):
        load_body_model(folder)
    assert not os.path.exists(marker), f"the {name} payload ran"


def test_official_encoding_still_loads(tmp_path):
    """The allowlist admits what the official file needs: chumpy, scipy.sparse and numpy, protocol 2."""
    from wham_ros.model.body_model import load_body_model
    from wham_ros.model.synthetic import write_body_model

    bm = load_body_model(write_body_model(str(tmp_path / "bm"), official_encoding=True))
    assert np.isfinite(bm.v_template.numpy()).all()


def test_chumpy_names_become_inert_stubs(tmp_path):
    """A class under chumpy's name is never imported or called with real effect, even with a reduce."""
    from wham_ros.model.body_model import read_smpl_pickle

    # REDUCE on a chumpy-named global: the stub is "called" with the payload's argument and stores it
    data = (b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01cchumpy.ch\nsystem\nq\x02X\x05\x00\x00\x00touchq\x03"
            b"\x85q\x04Rq\x05s.")
    path = tmp_path / "chumpy.pkl"
    path.write_bytes(data)
    with pytest.raises(BodyModelError, match=r"cannot decode pickled object chumpy\.ch\.system"):
        read_smpl_pickle(str(path))


@pytest.mark.parametrize("name", list(_payloads("x")))
def test_checkpoint_payloads_are_refused(tmp_path, name):
    """WHAM, ViTPose and HMR2.0 checkpoints are read with weights_only: a payload fails, nothing runs."""
    from wham_ros.model.checkpoint import read_state_dict
    from wham_ros.perception.hmr2 import load_hmr2
    from wham_ros.perception.vitpose import load_vitpose

    marker = str(tmp_path / "pwned")
    path = tmp_path / "ckpt.pth.tar"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": _payloads(marker)[name]}, path)
    for load in (read_state_dict, load_vitpose, load_hmr2):
        with pytest.raises(CheckpointError):
            load(str(path))
    assert not os.path.exists(marker), f"the {name} payload ran"


def test_yolo_checkpoint_payload_is_refused_by_name(tmp_path):
    from wham_ros.perception.yolo_checkpoint import read_yolo_state_dict

    marker = str(tmp_path / "pwned")
    path = tmp_path / "yolov8x.pt"
    torch.save({"model": _payloads(marker)["os.system"]}, path)
    with pytest.raises(CheckpointError, match=r"posix\.system|os\.system|allowlist"):
        read_yolo_state_dict(str(path))
    assert not os.path.exists(marker)
    assert zipfile.is_zipfile(path)          # a real torch file, not a trivially broken one
