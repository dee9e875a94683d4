"""The training side of the one network: configurable size, saved configs, train-mode forward, gradient stops."""
from __future__ import annotations

import pytest
import torch

from wham_ros.errors import CheckpointError
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.model import WhamNetwork, build_network, load_body_model, load_checkpoint, wham_forward
from wham_ros.model.checkpoint import network_config
from wham_ros.model.forward import train_forward
from wham_ros.model.network import NetworkConfig
from wham_ros.model.precision import set_precision
from wham_ros.model.regressor import Regressor
from wham_ros.model.synthetic import make_track_inputs
from wham_ros.stream import StreamEngine, stack_outputs
from wham_ros.stream.state import frame_input_from_official, track_init_from_official

SMALL = NetworkConfig(d_embed=24, n_layers=2, refiner_hidden=16, refiner_layers=1, integrator_hidden=32)


@pytest.fixture(scope="module")
def body(synthetic_body_dir):
    return load_body_model(synthetic_body_dir)


def small_net(body, config=SMALL, seed=0) -> WhamNetwork:
    torch.manual_seed(seed)
    return WhamNetwork(body, config)


def inputs(T=12, B=2, seed=0):
    one = [make_track_inputs(T, seed + b, box_x=0.1 * b) for b in range(B)]
    return {k: torch.cat([o[k] for o in one]) for k in one[0]}


def test_default_config_is_the_official_network(synthetic_net):
    assert synthetic_net.config == NetworkConfig()
    assert network_config({"model": {}}) == NetworkConfig()


def test_small_checkpoints_carry_their_config_into_build_network(body, synthetic_body_dir, tmp_path):
    net = small_net(body)
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("smpl.")}
    path = str(tmp_path / "small.pth.tar")
    torch.save({"model": sd, "network": SMALL.to_dict()}, path)
    loaded = build_network(path, synthetic_body_dir)
    assert loaded.config == SMALL and not loaded.training
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in sd.items())
    assert loaded.motion_encoder.regressor.rnn.hidden_size == 24
    assert loaded.trajectory_decoder.regressor.rnn.hidden_size == 24 + 51
    # a network of another size refuses it by name, before any shape list
    with pytest.raises(CheckpointError, match="saved for the network"):
        load_checkpoint(WhamNetwork(body), path)
    torch.save({"model": sd, "network": {**SMALL.to_dict(), "width": 3}}, path)
    with pytest.raises(CheckpointError, match="unknown network config keys"):
        build_network(path, synthetic_body_dir)
    torch.save({"model": sd, "network": {**SMALL.to_dict(), "d_embed": 0}}, path)
    with pytest.raises(CheckpointError, match="d_embed must be a positive integer"):
        build_network(path, synthetic_body_dir)


def test_a_network_without_integrator_runs_everywhere(body, synthetic_body_dir, tmp_path):
    config = NetworkConfig(d_embed=24, n_layers=2, refiner_hidden=16, integrator=False)
    net = small_net(body, config)
    assert not any(k.startswith("integrator.") for k in net.state_dict())
    ctx = torch.randn(1, 3, 75)
    assert net.integrator(ctx, torch.randn(1, 3, 1024), torch.ones(1, 3, 1, dtype=torch.bool)) is ctx
    set_precision(net, "fp16")
    i = inputs(T=10, B=1)
    batch = wham_forward(net, **i)
    engine = StreamEngine(net)
    engine.add_track(0, track_init_from_official(i))
    stream = stack_outputs([engine.step({0: frame_input_from_official(i, t)}).outputs[0] for t in range(10)],
                           i["init_root"])
    assert torch.allclose(stream["trans_world"], batch["trans_world"], atol=1e-3)
    # with and without features alike: the motion decoder reads the context as trained
    no_features = wham_forward(set_precision(net, "fp32"), **{**i, "features": torch.zeros_like(i["features"])})
    assert torch.equal(no_features["pose"], wham_forward(net, **i)["pose"])


def test_train_forward_in_eval_mode_is_the_engine_forward(synthetic_net):
    i = inputs(T=15)
    ref = wham_forward(synthetic_net, **i)
    with torch.no_grad():
        out = train_forward(synthetic_net, **{k: v for k, v in i.items() if k != "features"}, features=i["features"])
    for key in ("pose", "betas", "cam", "contact", "feet", "pose_root", "vel_root", "poses_root_r6d_refined",
                "vel_root_refined", "poses_root_world", "trans_world"):
        assert torch.allclose(out[key], ref[key], rtol=1e-4, atol=1e-5), key
    assert torch.allclose(out["trans_cam"].reshape(-1, 3), ref["trans_cam"], rtol=1e-5, atol=1e-5)
    B, T = i["x"].shape[:2]
    assert out["kp3d"].shape == (B, T, 31, 3) and out["kp3d_nn"].shape == (B, T, 51)
    assert out["full_kp2d"].shape == (B, T, 31, 2) and out["R"].shape == (B, T, 3, 3)
    # the projection: K (joints + trans_cam)
    p = out["kp3d"][0, 0, 0] + out["trans_cam"][0, 0]
    K = i["cam_intrinsics"][0, 0]
    assert torch.allclose(out["full_kp2d"][0, 0, 0], (K[:2, :2] @ (p[:2] / p[2])) + K[:2, 2], rtol=1e-5)
    # no features: official stage 1 skips the integrator
    with torch.no_grad():
        stage1 = train_forward(synthetic_net, **{k: v for k, v in i.items() if k != "features"})
    assert not torch.allclose(stage1["pose"], out["pose"])


def test_dropout_acts_only_in_training(body):
    net = small_net(body)
    i = {k: v for k, v in inputs(T=8).items() if k != "features"}
    with torch.no_grad():
        a = train_forward(net, **i)["pose"]
        net.train()
        torch.manual_seed(0)
        b = train_forward(net, **i)["pose"]
        torch.manual_seed(0)
        c = train_forward(net, **i)["pose"]
        torch.manual_seed(1)
        d = train_forward(net, **i)["pose"]
        net.eval()
        e = train_forward(net, **i)["pose"]
    assert torch.equal(a, e) and torch.equal(b, c) and not torch.allclose(a, b) and not torch.allclose(b, d)


def test_step_dropout_is_between_layers_only():
    reg = Regressor(5, 7, [3], 0, 3)
    x, state = torch.randn(4, 1, 5), reg.zero_state(4, torch.zeros(1))
    reg.eval()
    _, y_eval, _ = reg.step(x, (), state)
    _, y_seq, _ = reg(x, (), state)
    assert torch.allclose(y_eval, y_seq, atol=1e-6)
    reg.train()
    reg.rnn.dropout = 0.0
    assert torch.allclose(reg.step(x, (), state)[1], y_eval)            # no dropout: the same cells
    reg.rnn.dropout = 0.999999
    _, y, (h, _) = reg.step(x, (), state)
    assert torch.allclose(h[0], reg.step(x, (), state)[2][0][0])        # layer 0's state is never dropped
    assert not torch.allclose(y, y_eval)
    assert Regressor(5, 7, [3], 0, 1).rnn.dropout == 0.0                 # one layer: nothing between layers


def _grads(net) -> dict[str, bool]:
    """Per top-level module: does any parameter have a non-zero gradient?"""
    out = {}
    for name, p in net.named_parameters():
        top = name.split(".")[0]
        out[top] = out.get(top, False) or (p.grad is not None and bool(p.grad.abs().sum() > 0))
    return out


def test_gradient_stops_of_the_official_training_forward(body):
    """root_ref trains only the refiner; sliding_ref reaches the motion decoder but not the trajectory decoder."""
    net = small_net(body).train()
    i = {k: v for k, v in inputs(T=6).items() if k != "features"}
    torch.manual_seed(0)
    out = train_forward(net, **i)
    (out["poses_root_r6d_refined"].square().sum() + out["vel_root_refined"].square().sum()).backward()
    g = _grads(net)
    assert g["trajectory_refiner"] and not g["trajectory_decoder"] and not g["motion_decoder"]
    assert not g["motion_encoder"]
    net.zero_grad()
    torch.manual_seed(0)
    out = train_forward(net, **i)
    out["feet_refined"].square().sum().backward()
    g = _grads(net)
    assert g["motion_decoder"] and g["trajectory_refiner"] and not g["trajectory_decoder"]
    net.zero_grad()
    torch.manual_seed(0)
    out = train_forward(net, **i)
    out["feet"].square().sum().backward()                                 # the unrefined feet: everything
    g = _grads(net)
    assert g["motion_decoder"] and g["trajectory_decoder"] and g["motion_encoder"] and not g["trajectory_refiner"]


def test_regressed_points_equal_get_joints(body):
    rot = axis_angle_to_matrix(torch.randn(40, 24, 3, generator=torch.Generator().manual_seed(0)) * 0.4)
    betas = torch.randn(40, 10, generator=torch.Generator().manual_seed(1))
    a = body.get_joints(rot[:, :1], rot[:, 1:], betas)
    b = body.regressed_points(rot[:, :1], rot[:, 1:], betas)
    for key in ("joints", "feet", "offset"):
        assert torch.allclose(getattr(a, key), getattr(b, key), atol=2e-6), key


def test_closed_form_points_without_pose_blend_shapes(body):
    """The free body has no pose correctives: the closed form is taken and equals skinning the mesh."""
    import copy

    flat = copy.deepcopy(body)
    flat.posedirs.zero_()
    flat.refresh_joint_subset()
    assert flat._skinned() is not None and body._skinned() is None
    rot = axis_angle_to_matrix(torch.randn(30, 24, 3, generator=torch.Generator().manual_seed(2)) * 0.5)
    rot.requires_grad_(True)
    betas = torch.randn(30, 10, generator=torch.Generator().manual_seed(3))
    a = flat.get_joints(rot[:, :1], rot[:, 1:], betas)
    b = flat.regressed_points(rot[:, :1], rot[:, 1:], betas)
    for key in ("joints", "feet", "offset"):
        assert torch.allclose(getattr(a, key), getattr(b, key), atol=2e-6), key
    b.joints.sum().backward()
    assert rot.grad is not None and float(rot.grad.abs().sum()) > 0
