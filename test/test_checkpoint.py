"""Checkpoint loading: official layout, strict keys, smpl.* precedence, and clear errors."""
from __future__ import annotations

import logging
import os
import random

import pytest
import torch

from wham_ros.errors import CheckpointError
from wham_ros.model import WhamNetwork, build_network, load_body_model, load_checkpoint
from wham_ros.model.checkpoint import DEMO_DROPPED_KEYS
from wham_ros.model.synthetic import parameter_shapes


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory, test_state_dict):
    path = str(tmp_path_factory.mktemp("ckpt") / "wham_vit_bedlam_w_3dpw.pth.tar")
    torch.save({"epoch": 30, "model": test_state_dict, "performance": 45.2,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}}, path)
    return path


def test_official_layout_loads_strictly(ckpt_path, synthetic_body_dir, test_state_dict):
    net = build_network(ckpt_path, synthetic_body_dir)
    own = net.state_dict()
    assert all(torch.equal(own[k], v) for k, v in test_state_dict.items())
    assert sum(p.numel() for n, p in net.named_parameters() if not n.startswith("smpl.")) == 42_034_668
    assert not net.training


def test_parameter_names_and_shapes_equal_the_official_list(parity_weights):
    """Every official non-smpl key (the parity fixture's list) and nothing else."""
    assert parameter_shapes() == dict(parity_weights.KEYS)


def _save(tmp_path, obj, name="ck.pth.tar"):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


@pytest.fixture
def net(synthetic_body_dir):
    return WhamNetwork(load_body_model(synthetic_body_dir))


def test_missing_and_unknown_keys_are_listed(net, tmp_path, test_state_dict):
    sd = dict(test_state_dict)
    del sd["integrator.layer2.bias"]
    sd["integrator.layer9.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(net, _save(tmp_path, {"model": sd}))
    msg = str(err.value)
    assert "missing 1 keys: integrator.layer2.bias" in msg and "unexpected 1 keys: integrator.layer9.weight" in msg


def test_wrong_shape_is_named(net, tmp_path, test_state_dict):
    sd = dict(test_state_dict, **{"motion_encoder.embed_layer.weight": torch.zeros(512, 49)})
    want = r"motion_encoder\.embed_layer\.weight \(512, 49\) \(expected \(512, 37\)\)"
    with pytest.raises(CheckpointError, match=want):
        load_checkpoint(net, _save(tmp_path, {"model": sd}))


def test_nan_weights_are_rejected(net, tmp_path, test_state_dict):
    bad = test_state_dict["integrator.layer1.bias"].clone()
    bad[3] = float("nan")
    with pytest.raises(CheckpointError, match=r"NaN or inf in integrator\.layer1\.bias"):
        load_checkpoint(net, _save(tmp_path, {"model": dict(test_state_dict, **{"integrator.layer1.bias": bad})}))


def test_corrupt_truncated_and_foreign_files(net, tmp_path, ckpt_path):
    data = open(ckpt_path, "rb").read()
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt, truncated or not a torch checkpoint"):
        load_checkpoint(net, str(truncated))
    garbage = tmp_path / "garbage.pth.tar"
    for seed in range(20):                         # random bytes make the unpickler fail in many different ways
        garbage.write_bytes(random.Random(seed).randbytes(4096))
        with pytest.raises(CheckpointError, match="corrupt, truncated or not a torch checkpoint"):
            load_checkpoint(net, str(garbage))
    hmr2 = _save(tmp_path, {"state_dict": {"backbone.patch_embed.proj.weight": torch.zeros(2)}}, "hmr2a.ckpt")
    with pytest.raises(CheckpointError, match="Lightning checkpoint of another model"):
        load_checkpoint(net, hmr2)
    other = _save(tmp_path, {"model": {"fc.weight": torch.zeros(2, 2)}}, "other.pth.tar")
    with pytest.raises(CheckpointError, match="not a WHAM"):
        load_checkpoint(net, other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(net, str(tmp_path / "missing.pth.tar"))


def test_arbitrary_pickles_are_refused(net, tmp_path):
    """weights_only=True: a checkpoint that would run code on load is refused, not executed."""

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = str(tmp_path / "evil.pth.tar")
    torch.save({"model": {"x": Evil()}}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(net, path)
    assert not (tmp_path / "pwned").exists()


def test_smpl_entries_override_files_with_a_warning(net, tmp_path, test_state_dict, caplog):
    own = net.state_dict()
    v = own["smpl.v_template"].clone() + 0.01
    sd = dict(test_state_dict)
    sd["smpl.v_template"] = v
    sd["smpl.J_regressor_feet"] = own["smpl.J_regressor_feet"].clone()      # equal: no warning for it
    for k in DEMO_DROPPED_KEYS:
        sd[k] = torch.zeros(5184, 3)                                          # dropped like the demo does
    with caplog.at_level(logging.WARNING):
        report = load_checkpoint(net, _save(tmp_path, {"model": sd}))
    assert report.smpl_differing == ["smpl.v_template"]
    assert set(report.smpl_overridden) == {"smpl.v_template", "smpl.J_regressor_feet"}
    assert set(DEMO_DROPPED_KEYS) <= set(report.smpl_ignored)
    assert torch.equal(net.smpl.v_template, v)
    assert "smpl.v_template" in caplog.text and "take precedence" in caplog.text
    # derived tensors of the fast joint path follow the override
    torch.testing.assert_close(net.smpl._sub_v_template, v[net.smpl._sub_index])


def test_keys_that_are_not_names_are_refused():
    from wham_ros.weights import check_state_dict

    t = torch.zeros(2)
    with pytest.raises(CheckpointError, match="not parameter names"):
        check_state_dict({"a": t}, {0: t, "a": t}, "file.pth")
