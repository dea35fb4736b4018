"""The errors audioforge reports to users as one clear line (no traceback)."""


class AudioforgeError(Exception):
    """Base class: the CLI prints ``str(error)`` and exits non-zero."""

    exit_code = 1


class ConfigError(AudioforgeError):
    """An unknown, missing or ill-typed configuration key or value."""

    exit_code = 2


class DataError(AudioforgeError):
    """Missing, empty, corrupt or wrongly laid out audio data."""

    exit_code = 3


class DownloadError(DataError):
    """A dataset could not be fetched or failed its checksum."""


class DistillationError(AudioforgeError):
    """Distillation diverged or cannot start (non-finite loss, incompatible expert buffer)."""

    exit_code = 4


class Interrupted(AudioforgeError):
    """A signal (SIGTERM, SIGINT) stopped the command or one of its worker processes."""

    exit_code = 130


class WorkerError(AudioforgeError):
    """A worker process died outright (SIGKILL, out of memory) while running a task."""

    exit_code = 5
