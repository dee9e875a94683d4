"""Training WHAM (official stage 1) on motion capture seen through virtual cameras; no ROS needed.

``config`` (the recipe), ``clips`` / ``amass`` (motions), ``windows`` (which frames), ``samples`` with
``virtual_camera``, ``keypoint_noise`` and ``boxes`` (stage-1 samples), ``losses``, ``metrics`` /
``validate`` (held-out subjects) and ``trainer`` (the resumable loop behind ``wham-ros train``).
"""
