"""Moving the user's checkout of the base branch: every move is finished or undone (issue 11).

The move itself is ``git merge --ff-only`` (:func:`dagspec.git_merge.fast_forward`): git
writes the files, then the index, and moves the branch last. Run in its own process group,
it survives a killed ``dag`` and finishes on its own. What it cannot survive is being killed
itself (SIGKILL, the OOM killer, a power cut): then a truncated piece of a large file stays
untracked in the checkout and every later merge refuses because of it. So each move is
journaled:

1. take the move lock (an ``flock`` that git inherits, so it is held while either ``dag`` or
   its git lives, and the kernel releases it when both are gone);
2. write the journal ``<runs dir>/checkout-move.json``: the checkout, its branch, the commit it
   is at and the commit it moves to, and a token naming this move, written whole (temporary
   file, fsync, rename); its modification time opens the *window* in which git writes;
3. start the *end marker*, a small process of its own session that waits for the move lock,
   which it gets only once both ``dag`` and its git are gone or done; if the journal of its
   move is still there then, the move was cut short, and it writes the token to
   ``<runs dir>/checkout-move.ended``, whose modification time closes the window;
4. fast-forward; 5. remove the journal.

Every command that writes to the repository (``run``, ``resume``, ``retry``, ``merge``,
``cleanup``) first calls :func:`finish_interrupted`. A journal found there means a move was
cut short, and what git left is judged from the facts, never guessed:

- the branch is at the target: the move was complete (git moves the branch last);
- the branch has not moved but the index already holds the target's tree: git wrote every
  file and the index and was killed before moving the branch, which is then moved by
  compare-and-swap (``git update-ref <ref> <new> <old>`` stores ``<new>`` "after verifying
  that the current value of the <ref> matches <oldvalue>", git-update-ref(1));
- otherwise the move is undone (:func:`dagspec.checkout_undo.undo`): what git wrote is
  removed and what it removed is written back from the index, touching only files provably
  git's (a file cut short only when last modified inside the window: a user's edit after
  the kill is not), and the next merge moves the checkout again. Files left as possibly
  the user's are named on stderr.

When the window has no end (the marker was killed too), the boot closes it if the machine
was restarted since the journal (``btime`` of ``/proc/stat``); else no file cut short is
taken as git's, and such a file is left and named.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import cattrs

from dagspec import checkout_undo, git, git_checkout, git_merge, words
from dagspec.errors import DagspecError, GitError
from dagspec.workspace import runs_dir

JOURNAL = "checkout-move.json"
LOCK = "checkout-move.lock"
ENDED = "checkout-move.ended"

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
"""The end marker (module docstring, step 3): stdlib only, run with ``python -I -S``."""

_markers: list[subprocess.Popen[bytes]] = []
"""The end markers started, kept from the garbage collector (which warns of a running one)."""


@attrs.frozen
class Move:
    """One fast-forward of a checkout: ``branch``, checked out in ``checkout``, from commit
    ``old`` to commit ``new``, by run ``run_id``."""

    checkout: str
    branch: str
    old: str
    new: str
    run_id: str


_converter = cattrs.Converter(forbid_extra_keys=True)


def fast_forward(repo: Path, move: Move) -> None:
    """Fast-forward ``move.checkout`` to ``move.new``, journaled (module docstring).

    Raises ``GitError`` when git refuses (not a fast-forward, local changes in the way):
    git checks before it writes files, and the files in the way may be the user's own,
    saved a moment ago, so no file is undone then. A git that wrote files and index but
    could not move the branch is settled (branch moved, or files and index put back
    together). Only a git killed by a signal (the OOM killer) leaves files cut short, and
    that move is settled like a journaled one (its stale ``index.lock`` removed).
    """
    with _move_lock(repo) as lock:
        _settle_journal(repo)  # a move an earlier dag left cut short comes first
        token = secrets.token_hex(8)
        _write_journal(repo, move, token)
        _start_end_marker(repo, token)
        try:
            git_merge.fast_forward(Path(move.checkout), move.new, keep_fds=(lock,))
        except GitError as exc:
            killed = exc.returncode < 0  # midway: what it left is judged from the facts
            start = _journal(repo).stat().st_mtime_ns
            if killed:
                _drop_stale_index_lock(Path(move.checkout), start)
            _report(_settle(move, (start, _mark_end(repo)) if killed else None, killed))
            _journal(repo).unlink(missing_ok=True)
            (runs_dir(repo) / ENDED).unlink(missing_ok=True)
            raise
        _journal(repo).unlink(missing_ok=True)


def finish_interrupted(repo: Path) -> None:
    """Finish or undo a move of a checkout that a killed ``dag`` or git left half done, and
    say which on stderr; nothing (one ``stat``) when there is none. Waits while the git of
    a killed ``dag`` still works on it."""
    if not _journal(repo).exists():
        return
    with _move_lock(repo):
        _settle_journal(repo)


def _settle_journal(repo: Path) -> None:
    """With the move lock held: settle the journaled move, if any, and drop its journal."""
    found = _read_journal(repo)
    if found is None:
        return
    move, token = found
    start = _journal(repo).stat().st_mtime_ns
    _drop_stale_index_lock(Path(move.checkout), start)
    try:
        notes = _settle(move, _window(repo, start, token))
    except GitError as exc:
        raise DagspecError(
            f"an interrupted update of {move.checkout} to {move.new[:12]} could not be "
            f"finished or undone ({(exc.stderr or str(exc)).strip()}): fix what git says "
            f"there, then delete {_journal(repo)}"
        ) from None
    _journal(repo).unlink(missing_ok=True)
    (runs_dir(repo) / ENDED).unlink(missing_ok=True)
    _report(notes)


def _report(notes: list[str]) -> None:
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def _settle(move: Move, window: tuple[int, int] | None, undo_files: bool = True) -> list[str]:
    """Bring the checkout to one side of ``move`` (module docstring); one line for each
    thing done or left, none when the move had been completed (or its files were not to
    be undone: ``undo_files`` False, after a git that exited on its own). ``window``:
    :func:`dagspec.checkout_undo.undo`."""
    checkout = Path(move.checkout)
    if not checkout.is_dir():
        return []  # the checkout is gone: nothing of it to repair
    ref = f"refs/heads/{move.branch}"
    tip = git.rev_parse(checkout, ref)
    if tip == move.new:
        return []
    where = f"{checkout} ({move.branch})"
    if tip == move.old and git_checkout.index_matches(checkout, move.new):
        message = f"dag merge {move.run_id}: finish an interrupted update"
        with contextlib.suppress(GitError):  # the branch is locked (a stale ``<ref>.lock``)
            if git_merge.update_ref(checkout, ref, move.new, move.old, message=message):
                return [f"finished the update of {where} to {move.new[:12]} that was interrupted"]
        git_checkout.two_tree_update(checkout, move.new, move.old)  # back with the branch
        return [f"undid the update of {where} to {move.new[:12]}: its branch could not move"]
    if not undo_files:
        return []
    undone = checkout_undo.undo(checkout, move.old, move.new, window)
    notes = []
    if undone.changed:
        notes.append(
            f"undid the interrupted update of {where} to {move.new[:12]}; "
            f"`dag merge {move.run_id}` does it again"
        )
    if undone.left:
        shown = ", ".join(undone.left[:5]) + (", ..." if len(undone.left) > 5 else "")
        notes.append(
            f"left {words.counted(len(undone.left), 'file')} of {where} as found: changed "
            f"since the interrupted update (yours, or a piece git cut short): {shown}"
        )
    return notes


def _window(repo: Path, start: int, token: str | None) -> tuple[int, int] | None:
    """``(start, end)`` of the time git was writing (module docstring), in ns; None when
    its end is not known."""
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


def _start_end_marker(repo: Path, token: str) -> None:
    """Start the end marker of the move ``token`` (module docstring, step 3); it is not
    waited for: it ends once the move lock is free. Without it the window has no end,
    and a file cut short is left, not undone."""
    where = runs_dir(repo)
    args = [str(where / LOCK), str(_journal(repo)), str(where / ENDED), token]
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


def _mark_end(repo: Path) -> int:
    """Close the window now (git was seen killed): the marker's modification time, in ns."""
    ended = runs_dir(repo) / ENDED
    ended.write_text("", encoding="utf-8")
    return ended.stat().st_mtime_ns


def _drop_stale_index_lock(checkout: Path, since: int) -> None:
    """A git killed while writing the index leaves ``index.lock``, and every later git that
    writes the index refuses ("Another git process seems to be running"). Called with the
    move lock held, which the git of the move held too: a lock made after the journal
    (``since``, a modification time in ns) is that git's, which is gone."""
    if not checkout.is_dir():
        return
    lock = git.git_dir(checkout) / "index.lock"
    with contextlib.suppress(FileNotFoundError):
        if lock.stat().st_mtime_ns >= since:
            lock.unlink()


# --- the journal and its lock ---------------------------------------------------------------


def _journal(repo: Path) -> Path:
    return runs_dir(repo) / JOURNAL


@contextlib.contextmanager
def _move_lock(repo: Path) -> Iterator[int]:
    """Hold the move lock; yield its descriptor, for git to inherit. Says so on stderr when
    it has to wait (a killed ``dag``'s git is still updating the checkout)."""
    runs_dir(repo).mkdir(parents=True, exist_ok=True)
    fd = os.open(runs_dir(repo) / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("note: waiting for git to finish updating the checkout", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _write_journal(repo: Path, move: Move, token: str) -> None:
    """Write the journal whole: temporary file in the same directory, fsync, rename."""
    target = _journal(repo)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"format": 2, "token": token, **_converter.unstructure(move)}, file)
            file.flush()
            os.fsync(file.fileno())
        Path(tmp).replace(target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _read_journal(repo: Path) -> tuple[Move, str | None] | None:
    """The journaled move and its token (None in a journal of format 1, which had none);
    None when there is none, or it is not one this version wrote (then it is left alone: a
    newer dagspec's, or not dagspec's)."""
    try:
        data = json.loads(_journal(repo).read_text(encoding="utf-8"))
        if data.pop("format", None) not in (1, 2):
            return None
        token = data.pop("token", None)
        return _converter.structure(data, Move), token if isinstance(token, str) else None
    except (OSError, ValueError, cattrs.BaseValidationError):
        return None
