"""wham_ros: world-grounded 3D humans online, WHAM on a camera stream for ROS 2.

Sub-packages (all importable without ROS except ``ros``):
``geometry`` rotations, frames and gyro integration; ``model`` the WHAM networks,
body model and checkpoints; ``stream`` the online multi-track engine and causal
input builders.
"""
# The installed ROS build puts the generated ``wham_ros.msg`` next to these
# sources; extending __path__ lets a source checkout still find it.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"
