"""The one error a loader raises: its message is the one line the user sees for a file."""


class LoadError(Exception):
    pass


def said(exc: BaseException) -> str:
    """What a library raised, short: "KeyError: 'xl/workbook.xml'", or only its type where it said nothing
    (xlrd's bare AssertionError)."""
    first = next(iter(str(exc).strip().splitlines()), "")
    return f"{type(exc).__name__}: {first[:100]}" if first else type(exc).__name__
