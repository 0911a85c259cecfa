"""Errors a user can cause. Each message names the fix; the CLI prints it on one line."""


class SynsampleError(Exception):
    """Base class of every error synsample raises on purpose (bad input, missing data, ...)."""


class DataError(SynsampleError):
    """A dataset is unknown, missing, corrupt or fails its checksum."""


class ConfigError(SynsampleError):
    """A name, a shape, a range or a setting that synsample cannot use."""


class CheckpointError(SynsampleError):
    """A checkpoint folder is missing, incomplete or does not match the request."""
