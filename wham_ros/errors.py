"""Exceptions raised by wham_ros; each message names the file, key or input at fault."""


class WhamError(Exception):
    """Base class of every wham_ros error."""


class CheckpointError(WhamError):
    """A checkpoint file is missing, corrupt, truncated, from another model or incomplete."""


class BodyModelError(WhamError):
    """Body-model files are missing, unreadable or of the wrong shape."""


class InputError(WhamError, ValueError):
    """Network or engine inputs have the wrong shape, dtype or non-finite values."""


class MocapError(WhamError, ValueError):
    """A motion capture file (BVH, ASF, AMC) or a corpus is truncated, corrupt or of an unknown skeleton."""


class FetchError(WhamError):
    """An official file could not be downloaded, failed its checksum or format check, or could not be installed."""
