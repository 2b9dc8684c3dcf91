"""How a line fits a terminal's width (issue 14): the one order in which the live board and
the ``dag status`` table give up columns as the width shrinks, and the one cut of a line.

Pure. Widths are display columns: a wide (East Asian) character takes two, a combining one
none, so a line never wraps, even with an error message in Chinese, and a redraw that moves
the cursor up by the lines it drew lands where it began.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

import attrs

GAP = "  "
UNLIMITED = 100_000  # the width of a pipe: nothing is cut unless COLUMNS says so
SPEC_MIN = 12  # a spec id is cut to no fewer columns than this before other columns go
SPEC_LEAST = 4  # ... and to no fewer than this once only the symbol, id and time are left

Segment = tuple[str, str | None]  # text and the ANSI code it is painted with

# Control characters (C0, DEL, C1) and line separators: a note quoting an agent's output may
# carry them, and printed raw they would move the cursor or break the line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@attrs.frozen
class Column:
    """A column of a line: its width, and the blank columns between it and the one before."""

    width: int
    before: int = len(GAP)


@attrs.frozen
class _Give:
    column: str
    to: int = 0  # the width it is given up to (0: the column goes)
    as_needed: bool = False  # shrink only as far as the line needs (an id cut with "…")


# What goes first as the width shrinks. Never given up: the status symbol and the time; what
# still does not fit after the last step is cut at the end of the line with an ellipsis.
GIVE_UP: Sequence[_Give] = (
    _Give("bar"),  # the task bar: the fraction next to it says the same
    _Give("note"),  # the room the board keeps for a note (the note then gets what is left)
    _Give("spec", SPEC_MIN, as_needed=True),
    _Give("layer"),
    _Give("stage"),
    _Give("fraction"),
    _Give("status"),  # the status word: its symbol stays
    _Give("spec", SPEC_LEAST, as_needed=True),
)


def widths(columns: Mapping[str, Column], room: int) -> dict[str, int]:
    """The width each column keeps (0: given up) so that the line fits in ``room`` columns,
    giving up in the order of ``GIVE_UP``; columns it does not name are always kept.

    >>> widths({"spec": Column(20, 0), "bar": Column(8), "time": Column(6)}, 24)
    {'spec': 16, 'bar': 0, 'time': 6}
    """
    kept = {name: column.width for name, column in columns.items()}
    for give in GIVE_UP:
        over = _total(columns, kept) - room
        if over <= 0:
            break
        if give.column in kept:
            now = kept[give.column]
            kept[give.column] = min(now, max(give.to, now - over) if give.as_needed else give.to)
    for name in {give.column for give in GIVE_UP if give.as_needed} & kept.keys():
        if 0 < kept[name] < columns[name].width:  # what a later step freed, given back
            spare = room - _total(columns, kept)
            kept[name] = min(columns[name].width, kept[name] + max(spare, 0))
    return kept


def _total(columns: Mapping[str, Column], kept: Mapping[str, int]) -> int:
    return sum(width + columns[name].before for name, width in kept.items() if width > 0)


def width_of(text: str) -> int:
    """The columns ``text`` takes on a terminal."""
    if text.isascii():  # one column each, and most text is (`dag status` of 1000 specs)
        return len(text)
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or char == "\u200b":
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, its last one an ellipsis when something was cut
    (trailing blanks are cut without one)."""
    if width_of(text) <= width:
        return text
    if width_of(text.rstrip()) <= width:
        return _take(text, width)
    return _take(text, width - 1) + "…" if width > 0 else ""


def _take(text: str, width: int) -> str:
    """The longest start of ``text`` that takes at most ``width`` columns."""
    if text.isascii():
        return text[: max(width, 0)]
    used = 0
    for index, char in enumerate(text):
        used += _char_width(char)
        if used > width:
            return text[:index]
    return text


def pad(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns (its last one an ellipsis when something was cut) and
    filled with blanks to exactly ``width``: a cell of a table whose columns line up, wide
    characters or not."""
    cut = truncate(text, width)
    return cut + " " * (width - width_of(cut))


def column_widths(rows: Sequence[Sequence[str]], room: int, *, cut: int = 0) -> list[int]:
    """The width of each column of ``rows`` (the header one of them), in display columns: its
    widest cell; but column ``cut`` (the id that names each row) takes only what the other
    columns and the gaps between them leave of ``room``, and never fewer than ``SPEC_MIN``
    (a line still too wide is then cut at its end: ``line``).

    >>> column_widths([("SPEC", "TIME"), ("a-very-long-spec-id", "1s")], 20)
    [14, 4]
    """
    widths = [max(width_of(row[i]) for row in rows) for i in range(len(rows[0]))]
    others = sum(widths) - widths[cut] + len(GAP) * (len(widths) - 1)
    widths[cut] = min(widths[cut], max(room - others, SPEC_MIN))
    return widths


def printable(text: str) -> str:
    """``text`` with its control characters shown as ``?``: they never act on the terminal."""
    return _UNPRINTABLE.sub("?", text)


def line(segments: Sequence[Segment], width: int, color: bool, *, bold: bool = False) -> str:
    """Join ``segments``, cut at ``width`` columns (an ellipsis where text was cut), trailing
    blanks dropped, each segment painted with its code when ``color``. Never wider than
    ``width``: this is the cut every line of a table or of the board goes through."""
    kept: list[Segment] = []
    used = 0
    for text, code in segments:
        piece = truncate(printable(text), width - used)
        kept.append((piece, code))
        used += width_of(piece)
        if len(piece) < len(text):
            break
    while kept and not kept[-1][0].strip():
        kept.pop()
    if kept:
        kept[-1] = (kept[-1][0].rstrip(), kept[-1][1])
    text = "".join(paint(piece, code, color) for piece, code in kept)
    return paint(text, "1", color and bold)


def paint(text: str, code: str | None, color: bool) -> str:
    """``text`` in the ANSI colour ``code`` when ``color`` (and there is something to paint)."""
    return f"\x1b[{code}m{text}\x1b[0m" if color and code and text else text
