"""ROS 2 glue: message conversion, the node, TF. Only this sub-package imports ROS."""
