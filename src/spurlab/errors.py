"""Errors that the CLI turns into one clear line and an exit code."""


class SpurlabError(Exception):
    """A problem with the user's input, data or config: exit code 2, one line, no traceback."""

    exit_code = 2


class InternalError(SpurlabError):
    """Something failed that is not the user's fault (a write failed, a model misbehaved): exit code 1."""

    exit_code = 1
