"""The one error a loader raises: its message is the one line the user sees for a file."""


class LoadError(Exception):
    pass
