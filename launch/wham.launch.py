"""Start wham_node (a lifecycle node that configures and activates itself) and, optionally, RViz.

    ros2 launch wham_ros wham.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info imu:=/camera/imu rviz:=true

runs the embedded model and the free body (nothing to download); add checkpoint:=/path/wham_vit_w_3dpw_aug.pth.tar
body_model_dir:=/path/body_models for the official files.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = (
    ("params_file", PathJoinSubstitution([FindPackageShare("wham_ros"), "config", "wham.yaml"]),
     "YAML file with the node's parameters"),
    ("checkpoint", "", "WHAM checkpoint (.pth.tar); overrides params_file when given (empty: the embedded model)"),
    ("body_model_dir", "", "body model folder (smpl/SMPL_NEUTRAL.pkl + J_regressor_*.npy); overrides params_file"),
    ("image", "image", "input image topic (sensor_msgs/Image; <image>/compressed with use_compressed)"),
    ("camera_info", "camera_info", "input sensor_msgs/CameraInfo topic"),
    ("imu", "imu", "input sensor_msgs/Imu topic (gyro)"),
    ("use_sim_time", "false", "use /clock (bag replay)"),
    ("rviz", "false", "start RViz with config/wham.rviz"),
)


def _node(context):
    overrides = {"use_sim_time": LaunchConfiguration("use_sim_time").perform(context).lower() == "true"}
    for name in ("checkpoint", "body_model_dir"):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    image = LaunchConfiguration("image").perform(context)
    return [Node(
        package="wham_ros", executable="wham_node", name="wham_node", output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
        remappings=[("image", image), ("image/compressed", image + "/compressed"),
                    ("camera_info", LaunchConfiguration("camera_info")), ("imu", LaunchConfiguration("imu"))],
    )]


def generate_launch_description():
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS),
        OpaqueFunction(function=_node),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
             arguments=["-d", PathJoinSubstitution([FindPackageShare("wham_ros"), "config", "wham.rviz"])],
             condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
