"""Errors a user can cause. Each message names the fix; the CLI prints it on one line.

The errors about a value the user gave (a name, a setting, a file's content) are also
``ValueError`` subclasses, so that a library user's ``except ValueError`` catches them as it catches
PyTorch's and NumPy's.
"""


class SynsampleError(Exception):
    """Base class of every error synsample raises on purpose (bad input, missing data, ...)."""


class DataError(SynsampleError, ValueError):
    """A dataset is unknown, missing, corrupt or fails its checksum."""


class ConfigError(SynsampleError, ValueError):
    """A name, a shape, a range or a setting that synsample cannot use."""


class CheckpointError(SynsampleError, ValueError):
    """A checkpoint folder is missing, incomplete or does not match the request."""
