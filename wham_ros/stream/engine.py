"""Online WHAM: advance many tracks by one frame at a time, as one batch.

Each track keeps all recurrent state (four LSTMs, the autoregressive previous
outputs, running translations and previous feet), so the streamed outputs equal
the batch entry point (:func:`wham_ros.model.wham_forward`) on the same inputs at
every frame, for tracks that start at any frame. Tracks join with
:meth:`StreamEngine.add_track`, leave with :meth:`StreamEngine.remove_track`, and
need not step in every frame.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from wham_ros.errors import InputError
from wham_ros.geometry.rotations import rot6d_to_matrix, rot_x
from wham_ros.model import kinematics as K
from wham_ros.model.flip import average_flipped
from wham_ros.model.network import D_FEAT, WhamNetwork
from wham_ros.stream.state import (
    FrameInput,
    FrameOutput,
    TrackInit,
    TrackState,
    split_state,
    stack_states,
)

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    """Outputs of the tracks that advanced, and the reason for each track frame that was skipped."""

    outputs: dict[int, FrameOutput] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)


def _vec(name: str, value, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{name}: not convertible to a tensor ({exc})") from exc
    if t.numel() != int(torch.tensor(shape).prod()) or (t.dim() and t.shape[-1] != shape[-1]):
        raise InputError(f"{name} has shape {tuple(t.shape)}, expected {shape}")
    t = t.reshape(shape)
    if dtype is torch.bool:
        if t.dtype != torch.bool:
            raise InputError(f"{name} must be bool, got {t.dtype}")
        return t
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise InputError(f"{name} must be numeric, got {t.dtype}")
    t = t.to(dtype)
    if not torch.isfinite(t).all():
        raise InputError(f"{name} contains NaN or inf")
    return t


class StreamEngine:
    """Per-track online WHAM.

    net: a loaded :class:`WhamNetwork` (its device is used). flip_eval: also run the
    mirrored pass and average (the demo default; doubles the network cost).
    return_y_up: rotate world outputs to y-up like the demo. with_vertices: return
    the mesh vertices of every track (V x 3 floats each, V the body model's vertex count).
    """

    def __init__(self, net: WhamNetwork, *, flip_eval: bool = False, return_y_up: bool = False,
                 with_vertices: bool = False) -> None:
        self.net = net.eval()
        self.flip_eval = flip_eval
        self.return_y_up = return_y_up
        self.with_vertices = with_vertices
        p = next(net.parameters())
        self.device, self.dtype = p.device, p.dtype
        self._tracks: dict[int, TrackState] = {}
        self._y_up = rot_x(torch.pi, dtype=self.dtype).T.to(self.device)

    # ------------------------------------------------------------------ tracks
    @property
    def track_ids(self) -> list[int]:
        return list(self._tracks)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._tracks

    def __len__(self) -> int:
        return len(self._tracks)

    def frames_of(self, track_id: int) -> int:
        """How many frames track ``track_id`` has processed."""
        return self._tracks[track_id].frames

    @torch.no_grad()
    def add_track(self, track_id: int, init: TrackInit) -> None:
        """Start a track: neural initialisation of the encoder and decoder states."""
        if track_id in self._tracks:
            raise InputError(f"track {track_id} already exists")
        dev, dt = self.device, self.dtype
        init_kp = _vec("init_kp", init.init_kp, (1, 1, 88), dt).to(dev)
        init_smpl = _vec("init_smpl", init.init_smpl, (1, 1, 24, 6), dt).to(dev)
        init_root = _vec("init_root", init.init_root, (1, 1, 6), dt).to(dev)
        net = self.net
        enc, kp = net.motion_encoder.init_state(init_kp)
        dec, pose = net.motion_decoder.init_state(init_smpl)
        state = TrackState(
            frames=0, enc=enc, kp_prev=kp, traj=net.trajectory_decoder.regressor.zero_state(1, init_kp),
            root_prev=init_root, dec=dec, pose_prev=pose,
            refiner=net.trajectory_refiner.refiner.zero_state(1, init_kp), root_ref_prev=init_root[:, 0],
            trans_world=torch.zeros(1, 3, device=dev, dtype=dt),
            trans_world_ref=torch.zeros(1, 3, device=dev, dtype=dt),
            feet_world_prev=torch.zeros(1, 4, 3, device=dev, dtype=dt),
            feet_body_prev=torch.zeros(1, 4, 3, device=dev, dtype=dt), feature_prev=None,
            use_features=init.use_features,
        )
        if self.flip_eval:
            if init.flipped_init_kp is None or init.flipped_init_smpl is None:
                raise InputError(f"track {track_id}: flip evaluation needs flipped_init_kp and flipped_init_smpl")
            f_kp = _vec("flipped_init_kp", init.flipped_init_kp, (1, 1, 88), dt).to(dev)
            f_smpl = _vec("flipped_init_smpl", init.flipped_init_smpl, (1, 1, 24, 6), dt).to(dev)
            state.f_enc, state.f_kp_prev = net.motion_encoder.init_state(f_kp)
            state.f_dec, state.f_pose_prev = net.motion_decoder.init_state(f_smpl)
        self._tracks[track_id] = state

    def remove_track(self, track_id: int) -> None:
        """Forget a track and its state (no-op for unknown ids)."""
        self._tracks.pop(track_id, None)

    def reset(self) -> None:
        """Forget every track (e.g. after a time jump)."""
        self._tracks.clear()

    # ------------------------------------------------------------------ inputs
    def _prepare(self, track_id: int, f: FrameInput) -> dict[str, torch.Tensor]:
        dt = self.dtype
        p = {
            "x": _vec("x", f.x, (1, 1, 37), dt),
            "mask": _vec("mask", f.mask, (1, 1, 17), torch.bool),
            "cam_angvel": _vec("cam_angvel", f.cam_angvel, (1, 1, 6), dt),
            "bbox": _vec("bbox", f.bbox, (1, 3), dt),
            "focal": _vec("focal", f.focal, (1,), dt),
            "res": _vec("res", f.res, (1, 2), dt),
        }
        p["principal"] = p["res"] / 2.0 if f.principal is None else _vec("principal", f.principal, (1, 2), dt)
        if p["bbox"][0, 2] <= 0:
            raise InputError(f"bbox scale must be > 0, got {float(p['bbox'][0, 2])}")
        if p["focal"][0] <= 0 or (p["res"] <= 0).any():
            raise InputError("focal length and image size must be > 0")
        if f.feature is not None:
            p["feature"] = _vec("feature", f.feature, (1, 1, D_FEAT), dt)
        if self.flip_eval:
            if f.flipped_x is None or f.flipped_mask is None:
                raise InputError("flip evaluation needs flipped_x and flipped_mask")
            p["flipped_x"] = _vec("flipped_x", f.flipped_x, (1, 1, 37), dt)
            p["flipped_mask"] = _vec("flipped_mask", f.flipped_mask, (1, 1, 17), torch.bool)
            if f.flipped_feature is not None:
                p["flipped_feature"] = _vec("flipped_feature", f.flipped_feature, (1, 1, D_FEAT), dt)
        return {k: v.to(self.device) for k, v in p.items()}

    def _feature(self, state: TrackState, given: torch.Tensor | None, flipped: bool) -> tuple[torch.Tensor, bool, bool]:
        """(feature, residual, held) for one track frame under the missing-feature policy."""
        attr = "f_feature_prev" if flipped else "feature_prev"
        if not state.use_features:
            return torch.zeros(1, 1, D_FEAT, device=self.device, dtype=self.dtype), False, False
        held = given is None and getattr(state, attr) is not None
        feat = given if given is not None else getattr(state, attr)
        if feat is None:
            return torch.zeros(1, 1, D_FEAT, device=self.device, dtype=self.dtype), False, False
        setattr(state, attr, feat)
        return feat, bool((feat != 0).all()), held

    # ------------------------------------------------------------------ step
    @torch.no_grad()
    def step(self, frames: Mapping[int, FrameInput]) -> StepResult:
        """Advance every track in ``frames`` by one frame, all as one batch.

        A track frame with bad inputs (wrong shape, NaN/inf, unknown track) is skipped
        with its reason in ``StepResult.skipped``; that track's state is not advanced
        and the other tracks proceed.
        """
        result = StepResult()
        ids, prepared = [], []
        for tid, frame in frames.items():
            if tid not in self._tracks:
                result.skipped[tid] = "unknown track id (add_track first)"
                continue
            try:
                prepared.append(self._prepare(tid, frame))
                ids.append(tid)
            except InputError as exc:
                result.skipped[tid] = str(exc)
        for tid, why in result.skipped.items():
            log.debug("track %s: frame skipped: %s", tid, why)      # callers report it (the node: diagnostics)
        if ids:
            result.outputs = self._step_batch(ids, prepared)
        return result

    def _step_batch(self, ids: list[int], prepared: list[dict[str, torch.Tensor]]) -> dict[int, FrameOutput]:
        net = self.net
        states = [self._tracks[i] for i in ids]
        B = len(ids)
        cat = lambda key: torch.cat([p[key] for p in prepared], 0)
        feats = [self._feature(s, p.get("feature"), False) for s, p in zip(states, prepared)]
        feature = torch.cat([f[0] for f in feats], 0)
        residual = torch.tensor([f[1] for f in feats], device=self.device).view(B, 1, 1)

        # motion encoder -> trajectory decoder -> integrator -> motion decoder
        enc, kp_prev = stack_states(states, "enc"), stack_states(states, "kp_prev")
        context, kp, enc = net.motion_encoder.step(net.mask_keypoints(cat("x"), cat("mask")), kp_prev, enc)
        root_prev, traj = stack_states(states, "root_prev"), stack_states(states, "traj")
        vel, root, traj = net.trajectory_decoder.step(context, root_prev, cat("cam_angvel"), traj)
        integrated = net.integrator(context, feature, residual)
        pose, betas, cam, contact, dec = net.motion_decoder.step(
            integrated, stack_states(states, "pose_prev"), stack_states(states, "dec"))
        new = {"enc": enc, "kp_prev": kp, "traj": traj, "root_prev": root, "dec": dec, "pose_prev": pose}
        if self.flip_eval:
            f_feats = [self._feature(s, p.get("flipped_feature"), True) for s, p in zip(states, prepared)]
            f_residual = torch.tensor([f[1] for f in f_feats], device=self.device).view(B, 1, 1)
            f_context, f_kp, f_enc = net.motion_encoder.step(
                net.mask_keypoints(cat("flipped_x"), cat("flipped_mask")),
                stack_states(states, "f_kp_prev"), stack_states(states, "f_enc"))
            f_integrated = net.integrator(f_context, torch.cat([f[0] for f in f_feats], 0), f_residual)
            f_pose, f_betas, _, f_contact, f_dec = net.motion_decoder.step(
                f_integrated, stack_states(states, "f_pose_prev"), stack_states(states, "f_dec"))
            new.update(f_enc=f_enc, f_kp_prev=f_kp, f_dec=f_dec, f_pose_prev=f_pose)
            pose_out, betas_out, contact_out = average_flipped(pose, betas, contact, f_pose, f_betas, f_contact)
        else:
            pose_out, betas_out, contact_out = pose, betas, contact
        pose_out, betas_out, cam, contact_out = pose_out[:, 0], betas_out[:, 0], cam[:, 0], contact_out[:, 0]

        # body model and camera translation
        rot = rot6d_to_matrix(pose_out.reshape(B, 24, 6))
        pose_body = net.smpl.get_output if self.with_vertices else net.smpl.get_joints
        body = pose_body(rot[:, :1], rot[:, 1:], betas_out)
        trans_cam = K.full_camera_translation(cam, cat("bbox"), cat("focal"), cat("principal"))

        # unrefined world rollout, world feet, contact-based velocity reset
        first = torch.tensor([s.frames == 0 for s in states], device=self.device)
        R_prev, R = rot6d_to_matrix(root_prev[:, 0]), rot6d_to_matrix(root[:, 0])
        vel = vel[:, 0]
        trans_world = stack_states(states, "trans_world") + (R_prev @ vel.unsqueeze(-1)).squeeze(-1)
        root_cam = rot[:, 0]
        feet_world = K.world_feet(root_cam, R, trans_cam, trans_world, body.feet)
        feet_body = K.body_feet_in_world(root_cam, R, body.feet)
        vel_reset = K.reset_root_velocity(R, vel, feet_body, stack_states(states, "feet_body_prev"), contact_out, first)
        foot_vel = K.contact_foot_velocity(feet_world, stack_states(states, "feet_world_prev"), contact_out, first)

        # trajectory refiner and refined rollout
        d_root, d_vel, refiner = net.trajectory_refiner.step(
            torch.cat((context, foot_vel[:, None]), -1), root, vel_reset[:, None], stack_states(states, "refiner"))
        root_ref = root[:, 0] + d_root[:, 0]
        vel_ref = vel_reset + d_vel[:, 0]
        R_ref_prev = rot6d_to_matrix(stack_states(states, "root_ref_prev"))
        trans_world_ref = stack_states(states, "trans_world_ref") + (R_ref_prev @ vel_ref.unsqueeze(-1)).squeeze(-1)
        R_ref = rot6d_to_matrix(root_ref)
        new.update(refiner=refiner, root_ref_prev=root_ref, trans_world=trans_world, trans_world_ref=trans_world_ref,
                   feet_world_prev=feet_world, feet_body_prev=feet_body)

        out_R, out_t = R_ref, trans_world_ref
        if self.return_y_up:
            out_R = self._y_up @ R_ref
            out_t = (self._y_up @ trans_world_ref.unsqueeze(-1)).squeeze(-1)

        outputs = {}
        cpu = lambda t: t.detach().to("cpu")
        for b, (tid, state) in enumerate(zip(ids, states)):
            for name, value in new.items():
                setattr(state, name, split_state(value, b))
            outputs[tid] = FrameOutput(
                frame_index=state.frames, pose=cpu(pose_out[b]), betas=cpu(betas_out[b]), cam=cpu(cam[b]),
                contact=cpu(contact_out[b]), poses_root_cam=cpu(rot[b, 0]), poses_body=cpu(rot[b, 1:]),
                trans_cam=cpu(trans_cam[b]), joints=cpu(body.joints[b]),
                verts_cam=cpu(body.vertices[b]) if self.with_vertices else None, feet=cpu(feet_world[b]),
                pose_root=cpu(root[b, 0]), vel_root=cpu(vel[b]), pose_root_refined=cpu(root_ref[b]),
                vel_root_refined=cpu(vel_ref[b]), poses_root_world=cpu(out_R[b]), trans_world=cpu(out_t[b]),
                feature_held=feats[b][2], residual=bool(feats[b][1]) and net.integrator.enabled,
            )
            state.frames += 1
        return outputs

