"""One joint-name table per source skeleton: which source joints play SMPL's 24.

A :class:`Rig` says, for every SMPL joint, which source joint's world rotation it takes
(``frame``), which two source points its bone must point along (``aim``, paired with the
SMPL bone ``target`` of the body's rest pose), and a second direction that fixes the
twist about that bone (``side``: an SMPL body axis, x = the body's left, y up,
z forward; ``side_source`` names the same direction on the source's bind pose as a signed
axis of the bind frames or as two source points; by default the bind frames' own ``side``
axis, right wherever a bone's bind frame is the body's: upright, facing +z).
``positions`` pairs SMPL joints with the source joints at the same anatomical place: they
drive the root translation, the bone-length fit of the shape and the accuracy check.
Tables list the left side and the body-centre joints; :func:`mirrored` adds the right
side by the rig's name substitutions. A rig also records its dataset: units, frame
rate, licence, attribution and how to read the subject from a file path.

The rigs are the three skeletons in ``shared/data/mocap``: CMU's 31-joint BVH (bvh11's
conversion, metres), the iClone Character Creator rig (``CC_Base_*``, cm) that
re-exports CMU subjects, and HDM05's per-actor Acclaim skeletons.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from wham_ros.errors import MocapError

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)

CMU_LICENCE = ("CMU Graphics Lab Motion Capture Database: free for research and commercial use; "
               "the data itself may not be resold")
CMU_ATTRIBUTION = ("The data used in this project was obtained from mocap.cs.cmu.edu. The database was "
                   "created with funding from NSF EIA-0196217.")
HDM05_LICENCE = "CC BY-SA 3.0 Unported (share-alike: derived data and trained weights carry the same licence)"
HDM05_ATTRIBUTION = ("The data used in this project was obtained from HDM05. M. Müller, T. Röder, M. Clausen, "
                     "B. Eberhardt, B. Krüger, A. Weber: Documentation Mocap Database HDM05, Technical Report "
                     "CG-2007-2, Universität Bonn, 2007.")


@dataclass(frozen=True)
class JointSpec:
    """How one SMPL joint takes its rotation from the source (see the module docstring).

    ``target`` is a pair of SMPL joint names (a rest-pose bone) or, for SMPL's leaf
    joints, a signed body axis such as ``"+z"``.
    """

    frame: str
    aim: tuple[str, str]
    target: tuple[str, str] | str
    side: str = "+z"
    side_source: str | tuple[str, str] | None = None


@dataclass(frozen=True)
class Rig:
    name: str
    joints: dict[str, JointSpec]
    positions: dict[str, str]
    dataset: str
    licence: str
    attribution: str
    subject_pattern: str
    subject_prefix: str
    metres: float | None = None       # BVH unit length; None: the file says (ASF)
    fps: float | None = None          # None: the file says (BVH)

    def source_joints(self) -> set[str]:
        """Every source joint name the table uses."""
        names = set(self.positions.values())
        for spec in self.joints.values():
            names |= {spec.frame, *spec.aim}
            if isinstance(spec.side_source, tuple):
                names |= set(spec.side_source)
        return names

    def subject(self, path: str) -> str:
        """Subject id from a file path, e.g. ``cmu_131`` or ``hdm05_bd``."""
        match = re.search(self.subject_pattern, path.replace("\\", "/"))
        if match is None:
            raise MocapError(f"{path}: no subject in the file name (rig {self.name} expects {self.subject_pattern})")
        value = match.group(1)
        return f"{self.subject_prefix}{int(value):03d}" if value.isdigit() else f"{self.subject_prefix}{value.lower()}"


def _flip_axis(axis: str) -> str:
    return ("-" if axis[0] == "+" else "+") + axis[1] if axis[1] == "x" else axis


def mirrored(joints: dict[str, JointSpec], swaps: tuple[tuple[str, str], ...]) -> dict[str, JointSpec]:
    """``joints`` plus a right-side copy of every ``left_*`` entry, source names rewritten by ``swaps``
    (the first matching pair, first occurrence: ``lclavicle`` becomes ``rclavicle``).

    Body axes stay the body's (a left-pointing side axis stays +x); only a leaf's
    ``target`` axis and the order of x-axis side points follow the mirror.
    """

    def swap(name: str) -> str:
        for left, right in swaps:
            if left in name:
                return name.replace(left, right, 1)
        return name

    out = dict(joints)
    for smpl, spec in joints.items():
        if not smpl.startswith("left_"):
            continue
        target = tuple(t.replace("left_", "right_") for t in spec.target) if isinstance(spec.target, tuple) \
            else _flip_axis(spec.target)
        points = spec.side_source
        if isinstance(points, tuple):
            points = tuple(swap(p) for p in points)
            if spec.side[1] == "x":
                points = points[::-1]
        out[smpl.replace("left_", "right_")] = JointSpec(swap(spec.frame), tuple(swap(a) for a in spec.aim),
                                                         target, spec.side, points)
    return out


def _positions(left: dict[str, str], centre: dict[str, str], swaps: tuple[tuple[str, str], ...]) -> dict[str, str]:
    out = dict(centre)
    for smpl, src in left.items():
        out[smpl] = src
        right = next((src.replace(a, b, 1) for a, b in swaps if a in src), src)
        out[smpl.replace("left_", "right_")] = right
    return out


_CMU_SWAPS = (("Left", "Right"), ("LFingers", "RFingers"), ("lhand", "rhand"))
CMU_BVH = Rig(
    name="cmu_bvh",
    joints=mirrored({
        "pelvis": JointSpec("Hips", ("RightHip", "LeftHip"), ("right_hip", "left_hip"), "+y"),
        "spine1": JointSpec("lowerback", ("lowerback", "Chest"), ("spine1", "spine2")),
        "spine2": JointSpec("Chest", ("Chest", "Chest2"), ("spine2", "spine3")),
        "spine3": JointSpec("Chest2", ("Chest2", "Neck"), ("spine3", "neck")),
        "neck": JointSpec("Neck", ("Neck", "Head"), ("neck", "head")),
        "head": JointSpec("Head", ("Head", "Head_end"), "+y"),
        "left_hip": JointSpec("LeftHip", ("LeftHip", "LeftKnee"), ("left_hip", "left_knee")),
        "left_knee": JointSpec("LeftKnee", ("LeftKnee", "LeftAnkle"), ("left_knee", "left_ankle")),
        "left_ankle": JointSpec("LeftAnkle", ("LeftAnkle", "LeftToe"), ("left_ankle", "left_foot"), "+x"),
        "left_foot": JointSpec("LeftToe", ("LeftToe", "LeftToe_end"), "+z", "+x"),
        "left_collar": JointSpec("LeftCollar", ("LeftCollar", "LeftShoulder"), ("left_collar", "left_shoulder")),
        "left_shoulder": JointSpec("LeftShoulder", ("LeftShoulder", "LeftElbow"), ("left_shoulder", "left_elbow")),
        "left_elbow": JointSpec("LeftElbow", ("LeftElbow", "LeftWrist"), ("left_elbow", "left_wrist")),
        "left_wrist": JointSpec("lhand", ("lhand", "LFingers"), ("left_wrist", "left_hand")),
        "left_hand": JointSpec("LFingers", ("LFingers", "LFingers_end"), "+x"),
    }, _CMU_SWAPS),
    positions=_positions(
        {"left_hip": "LeftHip", "left_knee": "LeftKnee", "left_ankle": "LeftAnkle", "left_foot": "LeftToe",
         "left_shoulder": "LeftShoulder", "left_elbow": "LeftElbow", "left_wrist": "LeftWrist"},
        {"neck": "Neck", "head": "Head"}, _CMU_SWAPS),
    dataset="CMU", licence=CMU_LICENCE, attribution=CMU_ATTRIBUTION,
    subject_pattern=r"(\d+)_\d+[^/]*\.bvh$", subject_prefix="cmu_", metres=1.0,
)

_CC_SWAPS = (("_L_", "_R_"),)
# The CC rig's bind pose lays every bone along its own +y (legs and arms point up); its bone
# frames keep the body's x (left) and z (forward) except the feet, whose x points right.
ICLONE_CC = Rig(
    name="iclone_cc",
    joints=mirrored({
        # CC_Base_Hip carries the spine, its child CC_Base_Pelvis the thighs: SMPL's pelvis carries
        # both, so it takes the spine's frame and turns its hip line onto the thighs
        "pelvis": JointSpec("CC_Base_Hip", ("CC_Base_R_Thigh", "CC_Base_L_Thigh"), ("right_hip", "left_hip"), "+y"),
        "spine1": JointSpec("CC_Base_Waist", ("CC_Base_Waist", "CC_Base_Spine01"), ("spine1", "spine2")),
        "spine2": JointSpec("CC_Base_Spine01", ("CC_Base_Spine01", "CC_Base_Spine02"), ("spine2", "spine3")),
        "spine3": JointSpec("CC_Base_Spine02", ("CC_Base_Spine02", "CC_Base_NeckTwist01"), ("spine3", "neck")),
        "neck": JointSpec("CC_Base_NeckTwist02", ("CC_Base_NeckTwist01", "CC_Base_Head"), ("neck", "head")),
        # the head bone has no tip; its bind frame is upright like the neck bone below it
        "head": JointSpec("CC_Base_Head", ("CC_Base_NeckTwist02", "CC_Base_Head"), "+y"),
        "left_hip": JointSpec("CC_Base_L_Thigh", ("CC_Base_L_Thigh", "CC_Base_L_Calf"), ("left_hip", "left_knee")),
        "left_knee": JointSpec("CC_Base_L_Calf", ("CC_Base_L_Calf", "CC_Base_L_Foot"), ("left_knee", "left_ankle")),
        "left_ankle": JointSpec("CC_Base_L_Foot", ("CC_Base_L_Foot", "CC_Base_L_ToeBase"), ("left_ankle", "left_foot"),
                                "+x", "-x"),
        "left_foot": JointSpec("CC_Base_L_ToeBase", ("CC_Base_L_ToeBase", "CC_Base_L_MidToe1"), "+z", "+x", "-x"),
        "left_collar": JointSpec("CC_Base_L_Clavicle", ("CC_Base_L_Clavicle", "CC_Base_L_Upperarm"),
                                 ("left_collar", "left_shoulder")),
        "left_shoulder": JointSpec("CC_Base_L_Upperarm", ("CC_Base_L_Upperarm", "CC_Base_L_Forearm"),
                                   ("left_shoulder", "left_elbow")),
        "left_elbow": JointSpec("CC_Base_L_Forearm", ("CC_Base_L_Forearm", "CC_Base_L_Hand"),
                                ("left_elbow", "left_wrist")),
        "left_wrist": JointSpec("CC_Base_L_Hand", ("CC_Base_L_Hand", "CC_Base_L_Mid1"), ("left_wrist", "left_hand")),
        "left_hand": JointSpec("CC_Base_L_Mid1", ("CC_Base_L_Mid1", "CC_Base_L_Mid2"), "+x"),
    }, _CC_SWAPS),
    positions=_positions(
        {"left_hip": "CC_Base_L_Thigh", "left_knee": "CC_Base_L_Calf", "left_ankle": "CC_Base_L_Foot",
         "left_foot": "CC_Base_L_ToeBase", "left_shoulder": "CC_Base_L_Upperarm", "left_elbow": "CC_Base_L_Forearm",
         "left_wrist": "CC_Base_L_Hand"},
        {"neck": "CC_Base_NeckTwist01", "head": "CC_Base_Head"}, _CC_SWAPS),
    dataset="CMU", licence=CMU_LICENCE, attribution=CMU_ATTRIBUTION,
    subject_pattern=r"(?:^|/)(\d+)_\d+\.bvh$", subject_prefix="cmu_", metres=0.01,
)

_ASF_SWAPS = (("l", "r"),)
HDM05_ASF = Rig(
    name="hdm05_asf",
    joints=mirrored({
        "pelvis": JointSpec("root", ("rfemur", "lfemur"), ("right_hip", "left_hip"), "+y"),
        "spine1": JointSpec("lowerback", ("lowerback", "upperback"), ("spine1", "spine2")),
        "spine2": JointSpec("upperback", ("upperback", "thorax"), ("spine2", "spine3")),
        "spine3": JointSpec("thorax", ("thorax", "upperneck"), ("spine3", "neck")),
        "neck": JointSpec("upperneck", ("upperneck", "head"), ("neck", "head")),
        "head": JointSpec("head", ("head", "head_end"), "+y"),
        "left_hip": JointSpec("lfemur", ("lfemur", "ltibia"), ("left_hip", "left_knee")),
        "left_knee": JointSpec("ltibia", ("ltibia", "lfoot"), ("left_knee", "left_ankle")),
        "left_ankle": JointSpec("lfoot", ("lfoot", "ltoes"), ("left_ankle", "left_foot"), "+x"),
        "left_foot": JointSpec("ltoes", ("ltoes", "ltoes_end"), "+z", "+x"),
        "left_collar": JointSpec("lclavicle", ("lclavicle", "lhumerus"), ("left_collar", "left_shoulder")),
        "left_shoulder": JointSpec("lhumerus", ("lhumerus", "lradius"), ("left_shoulder", "left_elbow")),
        # the forearm is two bones (radius, then the twisting wrist bone): the twist comes from the second
        "left_elbow": JointSpec("lwrist", ("lradius", "lhand"), ("left_elbow", "left_wrist")),
        "left_wrist": JointSpec("lhand", ("lhand", "lfingers"), ("left_wrist", "left_hand")),
        "left_hand": JointSpec("lfingers", ("lfingers", "lfingers_end"), "+x"),
    }, _ASF_SWAPS),
    positions=_positions(
        {"left_hip": "lfemur", "left_knee": "ltibia", "left_ankle": "lfoot", "left_foot": "ltoes",
         "left_shoulder": "lhumerus", "left_elbow": "lradius", "left_wrist": "lhand"},
        {"neck": "upperneck", "head": "head"}, _ASF_SWAPS),
    dataset="HDM05", licence=HDM05_LICENCE, attribution=HDM05_ATTRIBUTION,
    subject_pattern=r"(?i)HDM_([a-z]+)_[^/]*\.amc$", subject_prefix="hdm05_", fps=120.0,
)

RIGS = (CMU_BVH, ICLONE_CC, HDM05_ASF)


def rig_for(names: tuple[str, ...] | list[str], source: str) -> Rig:
    """The rig whose table fits a skeleton's joint names; raises naming the closest rig's missing joints."""
    have = set(names)
    missing = {rig.name: sorted(rig.source_joints() - have) for rig in RIGS}
    for rig in RIGS:
        if not missing[rig.name]:
            return rig
    best = min(missing, key=lambda k: len(missing[k]))
    raise MocapError(f"{source}: unknown skeleton ({len(have)} joints); closest table {best!r} lacks "
                     f"{missing[best][:8]}{' ...' if len(missing[best]) > 8 else ''}")
