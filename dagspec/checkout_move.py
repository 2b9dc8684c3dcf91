"""Moving the user's checkout of the base branch: every move is finished or undone (issue 11).

The move itself is ``git merge --ff-only`` (:func:`dagspec.git_merge.fast_forward`): git
writes the files, then the index, and moves the branch last. Run in its own process group,
it survives a killed ``dag`` and finishes on its own. What it cannot survive is being killed
itself (SIGKILL, the OOM killer, a power cut), nor a write that fails (a full disk: git
goes on with the next file, then exits with neither index nor branch moved): then a
truncated piece of a large file stays untracked in the checkout and every later merge
refuses because of it. So each move is journaled:

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
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from dagspec import (
    checkout_journal,
    checkout_orig,
    checkout_undo,
    git_checkout,
    git_merge,
    git_refs,
    git_worktree,
    lock_waits,
    words,
)
from dagspec.checkout_journal import ENDED, JOURNAL, LOCK, Move, Moved, Undoing
from dagspec.errors import DagspecError, GitError, as_typed

__all__ = [
    "ENDED",
    "JOURNAL",
    "LOCK",
    "Move",
    "Moved",
    "fast_forward",
    "finish_interrupted",
    "midway",
]


def fast_forward(repo: Path, move: Move, unsafe: Callable[[], str | None]) -> str | None:
    """Fast-forward ``move.checkout`` to ``move.new``, journaled (module docstring), unless
    ``unsafe``, asked with the locks held (the checkout, and its branch, as they are after
    any wait for the lock: ``checkout_safety.unsafe_to_update``), says why not: then that
    reason, and nothing moved.

    Raises ``GitError`` when git refuses (not a fast-forward, local changes in the way):
    git checks before it writes files, and the files in the way may be the user's own,
    saved a moment ago, so no file is undone then. A git that wrote files and index but
    could not move the branch is settled (branch moved, or files and index put back
    together). A git that failed midway (:func:`midway`: killed by a signal, the OOM
    killer; or a write that failed, a full disk) leaves files written and cut short: that
    move is settled like a journaled one (a killed git's stale locks removed), so
    that nothing of dagspec's is left to look like the user's.
    """
    with checkout_journal.move_lock(repo) as lock:
        _settle_journal(repo, lock)  # a move an earlier dag left cut short comes first
        with checkout_lock(Path(move.checkout)) as held:
            reason = unsafe()
            if reason is None:
                _move(repo, move, lock, held)
    return reason


def _move(repo: Path, move: Move, lock: int, held: tuple[int, ...]) -> None:
    """``fast_forward`` with both locks held: the move lock (``lock``) and the checkout's
    own (``held``); git inherits both."""
    token = os.urandom(8).hex()
    checkout_journal.write(repo, move, token)
    checkout_journal.start_end_marker(repo, token)
    try:
        git_merge.fast_forward(Path(move.checkout), move.new, keep_fds=(lock, *held))
    except GitError as exc:
        cut = midway(exc)  # what it left is judged from the facts
        start = checkout_journal.path(repo).stat().st_mtime_ns
        if exc.returncode < 0:
            _drop_stale_locks(Path(move.checkout), move.branch, start)
        window = (start, checkout_journal.mark_end(repo)) if cut else None
        settled = _settle(repo, lock, move, Undoing(window), undo_files=cut, cut_by=_cut_by(exc))
        _report(settled)
        if cut:  # a git of the settling killed in turn (a full disk) leaves them too
            _drop_stale_locks(Path(move.checkout), move.branch, start)
        checkout_journal.drop(repo)
        raise
    checkout_journal.path(repo).unlink(missing_ok=True)
    checkout_journal.forget_left(repo)
    checkout_orig.check(repo, move, os.urandom(8).hex(), (lock, *held))  # from another tip?


_REFUSALS = (
    "Not possible to fast-forward",
    "would be overwritten",
    "not uptodate",
    "Unable to create '",  # its lock file (``index.lock``): another git, or a stale lock
    "not something we can merge",
)
"""What git says when it refuses before it writes a file (``LANGUAGE=C``: ``git_env``)."""


def midway(exc: GitError) -> bool:
    """Whether the failed fast-forward ``exc`` may have written files: git was killed by a
    signal, or it failed for another reason than one it checks before it writes (a write
    that failed: ``No space left on device``, ``File too large``; git goes on with the
    next file, then exits with neither the index nor the branch moved)."""
    said = exc.stderr or ""
    return exc.returncode < 0 or not any(refusal in said for refusal in _REFUSALS)


def finish_interrupted(repo: Path) -> None:
    """Finish or undo a move of a checkout that a killed ``dag`` or git left half done (or
    an undo of one that was killed in turn), and say which on stderr; nothing (one
    ``stat``) when there is none. Waits while the git of a killed ``dag`` still works on
    it."""
    if not checkout_journal.path(repo).exists():
        return
    with checkout_journal.move_lock(repo) as lock:
        _settle_journal(repo, lock)


def _settle_journal(repo: Path, lock: int) -> None:
    """With the move lock (``lock``) held: settle the journaled move, if any, and drop its
    journal. A journal whose undo had begun says when git wrote the move's files; the
    window of that killed undo is added to the earlier ones."""
    entry = checkout_journal.read(repo)
    if entry is None:
        return
    move, start = entry.move, entry.written
    _drop_stale_locks(Path(move.checkout), move.branch, start)
    current = checkout_journal.window(repo, start, entry.token)
    if entry.undoing is None:
        undoing = Undoing(current)
    else:
        ended = (current,) if current is not None else ()
        undoing = Undoing(entry.undoing.window, entry.undoing.undone + ended)
    try:
        with checkout_lock(Path(move.checkout)):
            notes = _settle(repo, lock, move, undoing)
    except GitError as exc:
        raise DagspecError(
            f"an interrupted update of {move.checkout} to {move.new[:12]} could not be "
            f"finished or undone ({exc}): fix what git says "
            f"there, then delete {checkout_journal.path(repo)}"
        ) from None
    _drop_stale_locks(Path(move.checkout), move.branch, start)  # the settling's own git's
    checkout_journal.drop(repo)
    _report(notes)


CHECKOUT_LOCK = "dagspec-checkout-moving"  # not ``*.lock``: that is a git lock left stale


@contextlib.contextmanager
def checkout_lock(checkout: Path) -> Iterator[tuple[int, ...]]:
    """Hold the lock of ``checkout`` itself, an ``flock`` of ``CHECKOUT_LOCK`` in its own git
    directory; yield its descriptor, for git to inherit. The move lock and the journal are
    those of the checkout a run started from: a run of a linked worktree whose base branch
    is checked out in the main checkout moves that checkout under its own move lock, so
    without this one it could move it at once with a run of the main checkout. Nothing
    (no descriptor) when git cannot name the checkout's git directory: the move fails."""
    try:
        fd = os.open(
            git_worktree.own_git_dir(checkout) / CHECKOUT_LOCK, os.O_RDWR | os.O_CREAT, 0o644
        )
    except (GitError, OSError):
        yield ()
        return
    try:
        note = f"note: waiting for another run's update of {checkout}"
        lock_waits.hold(fd, note, f"another run's update of {checkout}")
        yield (fd,)
    finally:
        os.close(fd)


def _report(notes: list[str]) -> None:
    for note in notes:
        print(as_typed(f"note: {note}"), file=sys.stderr)


def _cut_by(exc: GitError) -> str | None:
    """What cut git's update short, for the note of its undoing: the file size limit
    (SIGXFSZ: ``ulimit -f``, like a full disk, is no interrupt), a failed write; None for
    a kill (an interrupt)."""
    if exc.returncode == -signal.SIGXFSZ:
        return "the file size limit (ulimit -f)"
    return "a failed write" if exc.returncode > 0 else None


def _settle(
    repo: Path,
    lock: int,
    move: Move,
    undoing: Undoing,
    *,
    undo_files: bool = True,
    cut_by: str | None = None,
) -> list[str]:
    """Bring the checkout to one side of ``move`` (module docstring); one line for each
    thing done or left, none when the move had been completed (or its files were not to
    be undone: ``undo_files`` False, after a git that refused before writing). ``undoing``: the
    windows for :func:`dagspec.checkout_undo.undo`. Before it undoes a file, the journal is
    marked (``checkout_journal.Undoing``) under a new token with an end marker of its own,
    so that an undo killed midway is finished by the next command. ``cut_by``: what cut
    the update short (``_cut_by``), else it was interrupted."""
    checkout = Path(move.checkout)
    if not checkout.is_dir():
        return []  # the checkout is gone: nothing of it to repair
    ref = f"refs/heads/{move.branch}"
    tip = git_refs.rev_parse(checkout, ref)
    if tip == move.new:
        return []
    where = f"{checkout} ({move.branch})"
    if tip == move.old and git_checkout.index_matches(checkout, move.new):
        message = f"dag merge {move.run_id}: finish an interrupted update"
        finished = f"finished the update of {where} to {move.new[:12]} that was interrupted"
        with contextlib.suppress(GitError):  # the branch is locked (a stale ``<ref>.lock``)
            if git_merge.update_ref(checkout, ref, move.new, move.old, message=message):
                return [finished]
        if git_refs.rev_parse(checkout, ref) == move.new:  # moved, then failed (its reflog: full)
            return [finished]
        git_checkout.two_tree_update(checkout, move.new, move.old)  # back with the branch
        return [f"undid the update of {where} to {move.new[:12]}: its branch could not move"]
    if not undo_files:
        return []
    token = os.urandom(8).hex()
    checkout_journal.write(repo, move, token, undoing)
    checkout_journal.start_end_marker(repo, token)
    undone = checkout_undo.undo(
        checkout, *(move.old, move.new, undoing.window), undoing=undoing.undone, keep_fds=(lock,)
    )
    notes = []
    update = f"update of {where} to {move.new[:12]}"
    update = f"interrupted {update}" if cut_by is None else f"{update}, which {cut_by} cut short"
    if undone.changed:
        again = f"dag merge {move.run_id}{' --onto-current' if move.onto_current else ''}"
        notes.append(f"undid the {update}; `{again}` does it again")
    if undone.left:
        checkout_journal.note_left(repo, checkout, undone.left)
        shown = ", ".join(undone.left[:5]) + (", ..." if len(undone.left) > 5 else "")
        notes.append(
            f"left {words.counted(len(undone.left), 'file')} of {where} as found: changed "
            f"since the {'interrupted ' if cut_by is None else ''}update (yours, or a piece "
            f"git cut short): {shown}"
        )
    return notes


def _drop_stale_locks(checkout: Path, branch: str, since: int) -> None:
    """A git killed while writing the index leaves ``index.lock``, and one killed while
    moving the branch (a full disk under ``ulimit -f``: SIGXFSZ at its reflog) leaves
    ``HEAD.lock`` and ``refs/heads/<branch>.lock``; every later git that writes them
    refuses ("Unable to create ... File exists"). Called with the move lock held, which the
    git of the move held too: a lock made after the journal (``since``, a modification
    time in ns) is that git's, which is gone."""
    if not checkout.is_dir():
        return
    own = git_worktree.git_dir(checkout)
    common = git_worktree.common_dir(checkout) or own
    for lock in (own / "index.lock", own / "HEAD.lock", common / f"refs/heads/{branch}.lock"):
        with contextlib.suppress(FileNotFoundError):
            if lock.stat().st_mtime_ns >= since:
                lock.unlink()
