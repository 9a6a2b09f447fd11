"""User-facing errors: each says what was wrong and what to do about it."""


class ClusterLensError(Exception):
    """An error caused by the user's input, with a message they can act on."""


class UnknownNameError(ClusterLensError, KeyError):
    """A registry lookup for a name that does not exist."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataError(ClusterLensError):
    """The images or dataset cannot be used as given."""


class ParameterError(ClusterLensError, ValueError):
    """A parameter is out of range or inconsistent with the data."""


class WorkspaceError(ClusterLensError):
    """The workspace cannot be opened or written."""


class TrainingError(ClusterLensError):
    """Training diverged (e.g. a NaN loss) and produced no usable result."""


class Cancelled(ClusterLensError):
    """The person stopped the work; nothing half-done is saved or shown as finished."""


class StaleEditError(ClusterLensError):
    """An edit quoted an older version of a run than the database holds: someone (another tab,
    another process) edited it since. Nothing was written; reload and redo the edit."""
