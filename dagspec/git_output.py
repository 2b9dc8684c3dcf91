"""Reading what git prints: its shape checked, never guessed.

Each reader takes the arguments git was given (for the message) and what it printed, and
returns its pieces, or raises ``GitOutputError`` naming what git printed where another
shape was expected (a newer git's output, a setting dagspec does not override): never an
``IndexError`` or ``ValueError`` of the parse, nor a silent misread. File lists come from
``-z`` output, where a path is as it is, newlines, quotes and bytes that are not UTF-8
included (``dagspec.git.run`` decodes with ``surrogateescape``); ref names, which cannot
hold a newline, a space or a control character (git-check-ref-format(1)), come one a line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dagspec.errors import GitOutputError

OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1, or SHA-256


def lines(text: str) -> list[str]:
    """The lines of git's output, split at newlines only: ``str.splitlines`` also splits at
    U+0085, U+2028 or a form feed, which a ref name or a commit's subject may hold."""
    return [line for line in text.split("\n") if line]


def one_line(args: Sequence[str], out: str) -> str:
    """What ``git args`` printed as its one answer (a path, a branch), without the newline
    that ends it, and nothing else removed: git prints a path as it is, so it may hold a
    newline or end in a space, and a branch may end in U+2028, which ``strip`` would cut.
    Raises ``GitOutputError`` when the answer does not end with a newline."""
    if out and not out.endswith("\n"):
        raise GitOutputError(["git", *args], out, out, "one line ended by a newline")
    return out.removesuffix("\n")


def nul_split(text: str) -> list[str]:
    """Split ``-z`` output whose empty fields mean nothing (``worktree list``: between
    worktrees; ``merge-tree``: after the conflicted files)."""
    return [item for item in text.split("\0") if item]


def fields(args: Sequence[str], out: str) -> list[str]:
    """The fields of the ``-z`` output of ``git args``, each ended by a NUL; raises
    ``GitOutputError`` when it is not that (a field without its NUL, an empty one)."""
    if not out:
        return []
    *items, last = out.split("\0")
    if last:
        raise GitOutputError(["git", *args], out, last, "each field ended by a NUL (-z)")
    if "" in items:
        raise GitOutputError(["git", *args], out, out, "no empty field (-z)")
    return items


_STATUS = re.compile(r"[ MTADRCU?!]{2} .", re.DOTALL)


def status_entries(args: Sequence[str], out: str) -> list[str]:
    """``XY path`` of each entry of ``git status --porcelain -z`` (``args``); the origin of a
    rename or copy, the field after it, left out. Either column may say so: ``R `` is a
    rename in the index, `` R`` one in the worktree (of a file added with ``--intent-to-add``),
    git-status(1). Raises ``GitOutputError`` for an entry of any other shape."""
    entries: list[str] = []
    origin_follows = False
    for item in fields(args, out):
        if origin_follows:
            origin_follows = False
            continue
        if not _STATUS.match(item):
            raise GitOutputError(["git", *args], out, item, "'XY PATH' entries")
        entries.append(item)
        origin_follows = bool({"R", "C"} & set(item[:2]))
    if origin_follows:
        raise GitOutputError(["git", *args], out, entries[-1], "the origin path after it")
    return entries


def ref_names(args: Sequence[str], out: str) -> list[str]:
    """The full ref names ``git for-each-ref --format=%(refname)`` printed, one a line."""
    found = lines(out)
    for ref in found:
        if not ref.startswith("refs/") or " " in ref:
            raise GitOutputError(["git", *args], out, ref, "full ref names (refs/...)")
    return found


_V2_FIELDS = {"1": 8, "2": 9, "u": 10}
"""``git status --porcelain=v2`` (git-status(1)): the fields of an entry of each kind
before its path (``1`` a change, ``2`` a rename or copy, its origin a field of its own
after it under ``-z``, ``u`` an unmerged path)."""


def status_v2(args: Sequence[str], out: str) -> tuple[dict[str, str], list[str]]:
    """The headers (``branch.oid``, ``branch.head``...) and the ``XY path`` of each entry
    of ``git status --porcelain=v2 -z`` (``args``), as ``status_entries`` reads v1's (an
    origin left out, `` `` for v2's ``.``, unchanged). Raises
    ``GitOutputError`` for an item of any other shape."""
    headers: dict[str, str] = {}
    entries: list[str] = []
    items = iter(fields(args, out))
    for item in items:
        kind, *rest = item.split(" ", _V2_FIELDS.get(item[:1], 2))
        if kind == "#" and len(rest) == 2:
            headers[rest[0]] = rest[1]
            continue
        if kind not in _V2_FIELDS or len(rest) != _V2_FIELDS[kind] or len(rest[0]) != 2:
            raise GitOutputError(["git", *args], out, item, "porcelain=v2 entries")
        entries.append(f"{rest[0].replace('.', ' ')} {rest[-1]}")  # "." unchanged: v1's " "
        if kind == "2" and next(items, None) is None:
            raise GitOutputError(["git", *args], out, item, "the origin path after it")
    return headers, entries
