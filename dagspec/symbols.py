"""The symbols dagspec prints, and output that cannot encode them.

Imported by every command (``dag validate`` too), so it imports nothing of dagspec's.
"""

from __future__ import annotations

import io
from typing import TextIO

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ASCII_SPINNER = "|/-\\"
# Every symbol dagspec prints, and what stands for it where the output cannot encode it
# (the symbols of nox): ``text.translate(ASCII)``.
_ASCII_OF = {
    "◦": "o",
    "▸": ">",
    "◷": "=",
    "✓": "+",
    "✗": "x",
    "⊘": "-",
    "…": "~",
    "↳": ">",
    "·": "-",
    "→": "->",
}
ASCII = str.maketrans(_ASCII_OF)
_SPINNER_ASCII = {ord(c): ASCII_SPINNER[i % 4] for i, c in enumerate(SPINNER)}


def can_encode(stream: TextIO) -> bool:
    """Whether ``stream`` can print every symbol (not under ``PYTHONIOENCODING=ascii``)."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        ("".join(_ASCII_OF) + SPINNER).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class AsciiFallback(io.TextIOBase):
    """A text stream that writes the symbols as ASCII (``✓`` as ``+``, as nox does) and any
    other character it cannot encode as ``?``, so that no output ever fails to print."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.encoding_ = getattr(stream, "encoding", None) or "ascii"

    def write(self, text: str) -> int:
        plain = text.translate(ASCII).translate(_SPINNER_ASCII)
        self.stream.write(plain.encode(self.encoding_, "replace").decode(self.encoding_))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()
