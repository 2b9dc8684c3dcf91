"""The journal of a move of the user's checkout, its lock and its end marker
(:mod:`dagspec.checkout_move` says what each is for).

The journal ``<runs dir>/checkout-move.json`` holds the move (checkout, branch, the commit it
is at and the one it moves to, the run), a token naming this attempt, and, once an undo of
the move has begun, what that undo needs if it is killed in turn (:class:`Undoing`): the
window git was writing in, and the windows of the earlier undos that were killed. It is
always written whole (temporary file, fsync, rename); its modification time opens the
window of whatever is attempted under its token, and the end marker's file
``checkout-move.ended``, holding the token, closes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import cattrs

from dagspec import lock_waits
from dagspec.workspace import runs_dir

JOURNAL = "checkout-move.json"
LOCK = "checkout-move.lock"
ENDED = "checkout-move.ended"

Window = tuple[int, int]
"""``(start, end)`` modification times in ns (``st_mtime_ns``)."""

_MARKER = """\
import fcntl, json, os, sys
lock, journal, ended, token = sys.argv[1:]
fcntl.flock(os.open(lock, os.O_RDWR), fcntl.LOCK_EX)
try:
    with open(journal, encoding="utf-8") as file:
        cut_short = json.load(file).get("token") == token
except (OSError, ValueError):
    cut_short = False
if cut_short:
    with open(ended + ".tmp", "w", encoding="utf-8") as file:
        file.write(token)
    os.replace(ended + ".tmp", ended)
"""
"""The end marker (``checkout_move``, step 3): stdlib only, run with ``python -I -S``."""

_markers: list[subprocess.Popen[bytes]] = []
"""The end markers started, kept from the garbage collector (which warns of a running one)."""


class Moved(Exception):
    """The checkout is no longer where a move was planned from: HEAD names another branch
    (or none), or the branch is at another commit (a reset, a commit)."""


@attrs.frozen
class Move:
    """One fast-forward of a checkout: ``branch``, checked out in ``checkout``, from commit
    ``old`` to commit ``new``, by run ``run_id`` (``onto_current``: its merge replayed onto
    a rewritten base, which only ``dag merge --onto-current`` does again)."""

    checkout: str
    branch: str
    old: str
    new: str
    run_id: str
    onto_current: bool = False


@attrs.frozen
class Undoing:
    """An undo of the move has begun: ``window``, when git was writing the move's files
    (None: not known); ``undone``, the windows of earlier undos that were killed, in which
    their ``git checkout-index`` wrote the old files back."""

    window: Window | None
    undone: tuple[Window, ...] = ()


@attrs.frozen
class Entry:
    """The journal as read: the move, its token (None in format 1), its undo if begun, and
    the journal's modification time in ns (the start of the current attempt's window)."""

    move: Move
    token: str | None
    undoing: Undoing | None
    written: int


_converter = cattrs.Converter(forbid_extra_keys=True)


def path(repo: Path) -> Path:
    return runs_dir(repo) / JOURNAL


def write(repo: Path, move: Move, token: str, undoing: Undoing | None = None) -> None:
    """Write the journal whole: temporary file in the same directory, fsync, rename."""
    target = path(repo)
    data = {"format": 2, "token": token, **_converter.unstructure(move)}
    if undoing is not None:
        data["undoing"] = _converter.unstructure(undoing)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file)
            file.flush()
            os.fsync(file.fileno())
        Path(tmp).replace(target)
    except OSError as exc:  # a full disk: name the file (a write names none)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)


def read(repo: Path) -> Entry | None:
    """The journal; None when there is none, or it is not one this version wrote (then it
    is left alone: a newer dagspec's, or not dagspec's)."""
    try:
        data = json.loads(path(repo).read_text(encoding="utf-8"))
        written = path(repo).stat().st_mtime_ns
        if data.pop("format", None) not in (1, 2):
            return None
        token = data.pop("token", None)
        undoing = data.pop("undoing", None)
        return Entry(
            _converter.structure(data, Move),
            token if isinstance(token, str) else None,
            None if undoing is None else _converter.structure(undoing, Undoing),
            written,
        )
    except (OSError, ValueError, TypeError, cattrs.BaseValidationError):
        return None


def drop(repo: Path) -> None:
    """The move is settled: remove the journal and the end marker's file."""
    path(repo).unlink(missing_ok=True)
    (runs_dir(repo) / ENDED).unlink(missing_ok=True)


@contextlib.contextmanager
def move_lock(repo: Path) -> Iterator[int]:
    """Hold the move lock; yield its descriptor, for git to inherit. Says so on stderr when
    it has to wait (another run moves its checkout, or a killed ``dag``'s git is still
    updating it); a Ctrl-C ends the wait (``lock_waits.hold``: ``WaitStopped``)."""
    lock = runs_dir(repo) / LOCK
    runs_dir(repo).mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        note = f"note: waiting for git to finish updating the checkout, which holds {lock}"
        lock_waits.hold(fd, note, f"git to finish updating the checkout ({lock})")
        yield fd
    finally:
        os.close(fd)


def start_end_marker(repo: Path, token: str) -> None:
    """Start the end marker of the attempt ``token`` (``checkout_move``, step 3); it is not
    waited for: it ends once the move lock is free. Without it the window has no end,
    and a file cut short is left, not undone."""
    where = runs_dir(repo)
    args = [str(where / LOCK), str(path(repo)), str(where / ENDED), token]
    _markers[:] = [marker for marker in _markers if marker.poll() is None]  # reap ended ones
    with contextlib.suppress(OSError):
        marker = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _MARKER, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives a killed ``dag`` and its git
        )
        _markers.append(marker)


def mark_end(repo: Path) -> int:
    """Close the window now (git was seen to end midway): the marker's modification time,
    in ns; the clock's time when the marker cannot be written (a full disk), which is no
    earlier than any modification time the file system gave before."""
    ended = runs_dir(repo) / ENDED
    try:
        ended.write_text("", encoding="utf-8")
        return ended.stat().st_mtime_ns
    except OSError:
        return time.time_ns()


def window(repo: Path, start: int, token: str | None) -> Window | None:
    """``(start, end)`` of the time the attempt ``token`` was writing, in ns: closed by its
    end marker, else by the machine's restart; None when its end is not known."""
    ended = runs_dir(repo) / ENDED
    with contextlib.suppress(OSError):
        if token is not None and ended.read_text(encoding="utf-8") == token:
            return start, ended.stat().st_mtime_ns
    boot = _boot_time_ns()
    return (start, boot) if boot is not None and boot > start else None


def _boot_time_ns() -> int | None:
    """When the machine started (``btime`` in ``/proc/stat``, proc(5)), in ns."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text(encoding="ascii").splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) * 1_000_000_000
    return None


# --- what an undo left ------------------------------------------------------------------------

LEFT = "checkout-move.left"
"""The paths an undo left as possibly the user's (``checkout_move``), until a move succeeds."""


def note_left(repo: Path, checkout: Path, paths: Sequence[str]) -> None:
    """Remember that an undo left ``paths`` (repository-relative) in ``checkout``."""
    with contextlib.suppress(OSError):  # a note for a message: never worth failing over
        data = {"checkout": str(checkout), "paths": sorted({*left_behind(repo, checkout), *paths})}
        (runs_dir(repo) / LEFT).write_text(json.dumps(data), encoding="utf-8")


def left_behind(repo: Path, checkout: Path) -> frozenset[str]:
    """The paths an undo left in ``checkout`` since its last completed move."""
    try:
        data = json.loads((runs_dir(repo) / LEFT).read_text(encoding="utf-8"))
        if data["checkout"] == str(checkout):
            return frozenset(p for p in data["paths"] if isinstance(p, str))
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return frozenset()


def forget_left(repo: Path) -> None:
    """A move completed: what an earlier undo left is the user's business now."""
    (runs_dir(repo) / LEFT).unlink(missing_ok=True)
