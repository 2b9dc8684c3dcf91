"""A fast-forward of the user's checkout that git made from another tip than the one the
merge was built on (:mod:`dagspec.checkout_move`), taken back.

The checkout is asked once the move locks are held (``checkout_safety.unsafe_to_update``),
and git's ``merge --ff-only`` starts a moment later: it moves the branch from the tip *it*
reads as it starts, from any ancestor of the target. A reset in that moment (the user's git
takes no lock of dagspec's) would be fast-forwarded over, bringing back what it dropped.
git writes the tip it moved from to ``ORIG_HEAD``; when that is not the tip the merge was
built on, the move is taken back to it (files and index, then the branch by
compare-and-swap), journaled as a move of its own, and the merges are built again on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dagspec import checkout_journal, git_checkout, git_merge, git_worktree
from dagspec.checkout_journal import Move, Moved
from dagspec.git_output import OBJECT_ID


def moved_from(checkout: Path) -> str | None:
    """The commit the last ``git merge`` in ``checkout`` moved its branch from (git's
    ``ORIG_HEAD``, read from its file: no git process); None when there is no such file (a
    ref store of another kind keeps it elsewhere: then it is not asked)."""
    try:
        text = (git_worktree.own_git_dir(checkout) / "ORIG_HEAD").read_text(encoding="ascii")
    except (OSError, UnicodeError):
        return None
    commit = text.strip()
    return commit if OBJECT_ID.fullmatch(commit) else None


def check(repo: Path, move: Move, token: str, keep_fds: Sequence[int]) -> None:
    """After ``move`` succeeded: raise ``Moved`` when git moved the branch from another tip
    than ``move.old``, once the move is taken back (module docstring). ``token``: a fresh
    one, for the journal of the move back; ``keep_fds``: the locks, for git to inherit."""
    start = moved_from(Path(move.checkout))
    if start is None or start in (move.old, move.new):  # move.new: the user's own, after
        return
    checkout = Path(move.checkout)
    status = git_merge.checkout_status(checkout)
    if (status.branch, status.head, status.changes) != (move.branch, move.new, []):
        raise Moved(f"{checkout} moved again after its update to {move.new[:12]}")
    back = Move(move.checkout, move.branch, move.new, start, move.run_id, move.onto_current)
    checkout_journal.write(repo, back, token)  # killed midway: the next command settles it
    checkout_journal.start_end_marker(repo, token)
    git_checkout.two_tree_update(checkout, move.new, start, keep_fds=keep_fds)
    ref, message = f"refs/heads/{move.branch}", f"dag merge {move.run_id}: moved meanwhile"
    if not git_merge.update_ref(checkout, ref, start, move.new, message=message):
        git_checkout.two_tree_update(checkout, start, move.new, keep_fds=keep_fds)
    checkout_journal.drop(repo)
    raise Moved(f"{move.branch} was at {start[:12]} when git moved it, not {move.old[:12]}")
