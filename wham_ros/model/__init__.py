"""WHAM networks, body model, checkpoints and the batch entry point (no ROS needed)."""
from wham_ros.model.body_model import BodyModel, load_body_model
from wham_ros.model.checkpoint import build_network, load_checkpoint
from wham_ros.model.forward import flip_eval_forward, wham_forward
from wham_ros.model.network import WhamNetwork

__all__ = ["BodyModel", "WhamNetwork", "build_network", "flip_eval_forward", "load_body_model",
           "load_checkpoint", "wham_forward"]
