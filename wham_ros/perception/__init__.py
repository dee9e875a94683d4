"""Perception front ends: people, 2D keypoints (COCO-17), image features, tracking (no ROS needed)."""
