"""Errors whose message is the whole story for the user (imported by the CLI before anything heavy)."""


class ConfigError(ValueError):
    """A setting names something that can't be used here; the message says what to do instead."""
