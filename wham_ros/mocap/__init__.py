"""Motion capture in WHAM's training form.

Readers for BVH and Acclaim ASF/AMC give one :class:`~wham_ros.mocap.skeleton.Motion`
whatever the file format; a per-skeleton joint-name table (:mod:`wham_ros.mocap.rigs`)
says which source joints play SMPL's 24; :mod:`wham_ros.mocap.retarget` moves the motion
onto a body model's 24-joint tree in WHAM's gravity-aligned y-down world at 30 fps;
:mod:`wham_ros.mocap.corpus` builds and reads the corpus the trainer uses.
"""
