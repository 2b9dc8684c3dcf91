"""How a count reads in a message: ``1 spec``, ``2 specs``; the one place for plurals."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, the noun plural unless the count is one.

    >>> counted(1, "spec"), counted(0, "layer"), counted(2, "branch", "branches")
    ('1 spec', '0 layers', '2 branches')
    """
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
