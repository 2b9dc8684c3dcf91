"""How a line fits a terminal's width (issue 14): the one way every table gives up whole
columns as the width shrinks, each in its order (the live board's and ``dag status``'s,
``GIVE_UP``; the report card's, ``dag list``'s, the merge table's), and the one cut of a
line.

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
class Give:
    """One step of giving up: a column goes whole, or an id is cut to no fewer columns."""

    column: str
    to: int = 0  # the width it is given up to (0: the column goes)
    as_needed: bool = False  # shrink only as far as the line needs (an id cut with "…")


# What goes first as the width shrinks, on the board and in ``dag status``. Never given up:
# the status symbol and the time; what still does not fit after the last step is cut at the
# end of the line with an ellipsis. Every other table's order ends the same way.
GIVE_UP: Sequence[Give] = (
    Give("bar"),  # the task bar: the fraction next to it says the same
    Give("note"),  # the room the board keeps for a note (the note then gets what is left)
    Give("spec", SPEC_MIN, as_needed=True),
    Give("layer"),
    Give("stage"),
    Give("fraction"),
    Give("status"),  # the status word: its symbol stays
    Give("spec", SPEC_LEAST, as_needed=True),
)


def widths(
    columns: Mapping[str, Column], room: int, give_up: Sequence[Give] = GIVE_UP
) -> dict[str, int]:
    """The width each column keeps (0: given up) so that the line fits in ``room`` columns,
    giving up in the order of ``give_up``; columns it does not name are always kept.

    >>> widths({"spec": Column(20, 0), "bar": Column(8), "time": Column(6)}, 24)
    {'spec': 16, 'bar': 0, 'time': 6}
    """
    kept = {name: column.width for name, column in columns.items()}
    for give in give_up:
        over = _total(columns, kept) - room
        if over <= 0:
            break
        if give.column in kept:
            now = kept[give.column]
            kept[give.column] = min(now, max(give.to, now - over) if give.as_needed else give.to)
    for name in {give.column for give in give_up if give.as_needed} & kept.keys():
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


def column_widths(
    names: Sequence[str],
    rows: Sequence[Sequence[str]],
    room: int,
    give_up: Sequence[Give],
    *,
    trailing: str | None = None,
) -> dict[str, int]:
    """The width each column of ``rows`` (the header one of them; a cell per name of
    ``names``) keeps in ``room`` columns: its widest cell, or 0 when it is given up whole, in
    ``give_up``'s order (``widths``), never cut to a stub. The column ``trailing`` is the end
    of the cell before it (a commit after its merge's word: ``merged abc123``), one blank
    after it when it has text, and goes as a whole as the others do."""
    columns = {}
    for index, name in enumerate(names):
        widest = max(width_of(row[index]) for row in rows)
        columns[name] = Column(widest, len(GAP) if index else 0)
        if name == trailing:  # what the cells before it take with it, beyond themselves
            before = names[index - 1]
            whole = max(width_of(_joined(row[index - 1], row[index])) for row in rows)
            columns[name] = Column(max(whole - columns[before].width, 0), 0)
    return widths(columns, room, give_up)


def _joined(cell: str, end: str) -> str:
    return f"{cell} {end}" if end else cell


def table(
    names: Sequence[str],
    rows: Sequence[Sequence[str]],
    room: int,
    give_up: Sequence[Give],
    *,
    trailing: str | None = None,
) -> list[str]:
    """``rows`` as lines of at most ``room`` columns, with the columns ``column_widths``
    keeps, lined up in display columns (``pad``); what still does not fit once ``give_up``
    is done is cut at the end of the line (``line``).

    >>> table(("spec", "time", "note"), [("SPEC", "TIME", "NOTE"), ("a", "1s", "ok")], 11,
    ...       [Give("note")])
    ['SPEC  TIME', 'a     1s']
    """
    kept = column_widths(names, rows, room, give_up, trailing=trailing)
    lines = []
    for row in rows:
        cells: list[str] = []
        for index, (name, cell) in enumerate(zip(names, row, strict=True)):
            if name == trailing:
                if kept[name] and kept[names[index - 1]]:  # the cell before it, and its end
                    cells[-1] = pad(
                        _joined(row[index - 1], cell), kept[names[index - 1]] + kept[name]
                    )
            elif kept[name]:
                cells.append(pad(cell, kept[name]))
        lines.append(line([(GAP.join(cells), None)], room, False))
    return lines


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
