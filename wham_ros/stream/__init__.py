"""Online multi-track WHAM engine and causal input builders (no ROS needed)."""
from wham_ros.stream.engine import StepResult, StreamEngine
from wham_ros.stream.state import FrameInput, FrameOutput, TrackInit, stack_outputs

__all__ = ["FrameInput", "FrameOutput", "StepResult", "StreamEngine", "TrackInit", "stack_outputs"]
