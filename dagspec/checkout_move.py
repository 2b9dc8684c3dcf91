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
   is at and the commit it moves to, written whole (temporary file, fsync, rename);
3. fast-forward; 4. remove the journal.

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
  git's, and the next merge moves the checkout again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import cattrs

from dagspec import checkout_undo, git, git_checkout, git_merge
from dagspec.errors import DagspecError, GitError
from dagspec.workspace import runs_dir

JOURNAL = "checkout-move.json"
LOCK = "checkout-move.lock"


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
        _write_journal(repo, move)
        try:
            git_merge.fast_forward(Path(move.checkout), move.new, keep_fds=(lock,))
        except GitError as exc:
            killed = exc.returncode < 0  # midway: what it left is judged from the facts
            if killed:
                _drop_stale_index_lock(Path(move.checkout), _journal(repo).stat().st_mtime)
            _settle(move, undo_files=killed)
            _journal(repo).unlink(missing_ok=True)
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
    move = _read_journal(repo)
    if move is None:
        return
    _drop_stale_index_lock(Path(move.checkout), _journal(repo).stat().st_mtime)
    try:
        note = _settle(move)
    except GitError as exc:
        raise DagspecError(
            f"an interrupted update of {move.checkout} to {move.new[:12]} could not be "
            f"finished or undone ({(exc.stderr or str(exc)).strip()}): fix what git says "
            f"there, then delete {_journal(repo)}"
        ) from None
    _journal(repo).unlink(missing_ok=True)
    if note:
        print(f"note: {note}", file=sys.stderr)


def _settle(move: Move, *, undo_files: bool = True) -> str | None:
    """Bring the checkout to one side of ``move`` (module docstring); what was done, or None
    when the move had been completed (or its files were not to be undone: ``undo_files``
    False, after a git that exited on its own)."""
    checkout = Path(move.checkout)
    if not checkout.is_dir():
        return None  # the checkout is gone: nothing of it to repair
    ref = f"refs/heads/{move.branch}"
    tip = git.rev_parse(checkout, ref)
    if tip == move.new:
        return None
    where = f"{checkout} ({move.branch})"
    if tip == move.old and git_checkout.index_matches(checkout, move.new):
        message = f"dag merge {move.run_id}: finish an interrupted update"
        with contextlib.suppress(GitError):  # the branch is locked (a stale ``<ref>.lock``)
            if git_merge.update_ref(checkout, ref, move.new, move.old, message=message):
                return f"finished the update of {where} to {move.new[:12]} that was interrupted"
        git_checkout.two_tree_update(checkout, move.new, move.old)  # back with the branch
        return f"undid the update of {where} to {move.new[:12]}: its branch could not move"
    if undo_files and checkout_undo.undo(checkout, move.old, move.new):
        return (
            f"undid the interrupted update of {where} to {move.new[:12]}; "
            f"`dag merge {move.run_id}` does it again"
        )
    return None


def _drop_stale_index_lock(checkout: Path, since: float) -> None:
    """A git killed while writing the index leaves ``index.lock``, and every later git that
    writes the index refuses ("Another git process seems to be running"). Called with the
    move lock held, which the git of the move held too: a lock made after the journal
    (``since``, a modification time) is that git's, which is gone."""
    if not checkout.is_dir():
        return
    lock = git.git_dir(checkout) / "index.lock"
    with contextlib.suppress(FileNotFoundError):
        if lock.stat().st_mtime >= since:
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


def _write_journal(repo: Path, move: Move) -> None:
    """Write the journal whole: temporary file in the same directory, fsync, rename."""
    target = _journal(repo)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"format": 1, **_converter.unstructure(move)}, file)
            file.flush()
            os.fsync(file.fileno())
        Path(tmp).replace(target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _read_journal(repo: Path) -> Move | None:
    """The journaled move; None when there is none, or it is not one this version wrote
    (then it is left alone: a newer dagspec's, or not dagspec's)."""
    try:
        data = json.loads(_journal(repo).read_text(encoding="utf-8"))
        if data.pop("format", None) != 1:
            return None
        return _converter.structure(data, Move)
    except (OSError, ValueError, cattrs.BaseValidationError):
        return None
