"""Offline tools: recorded bags (ROS 1 and ROS 2) and videos (no running ROS needed)."""
