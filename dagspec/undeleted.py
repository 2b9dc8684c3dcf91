"""Branches of a run that git would not delete once the run was merged (a stale lock file
in its way): cleanup, not the merge. The merge is done and recorded whatever is left here,
and one line says what to do (README, Merging)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import attrs

from dagspec import git_said


@attrs.frozen
class Undeleted:
    """The run's ``branches`` git did not delete, what it ``said`` (its stderr), and every
    lock file in their way (``locks_in_the_way``), not only the first git met."""

    branches: tuple[str, ...]
    said: str
    locks: tuple[str, ...] = ()

    def line(self, run_id: str) -> str:
        """One line: the merge done, which branches stay, why (each lock file, named, to
        delete when no git is running), and ``dag cleanup RUN`` then."""
        locks = self.locks or tuple(git_said.locks_in_the_way(self.said))
        why = git_said.locks_advice(locks) if locks else git_said.gist(self.said) or "git failed"
        shown = ", ".join(self.branches) or "the run's branches"
        return (
            f"the merge of run {run_id} is done and recorded, but git did not delete {shown}: "
            f"{why}; then `dag cleanup {run_id}` deletes them"
        )


def with_locks(common: Path | None, branches: Iterable[str], said: str) -> Undeleted:
    """``branches`` git did not delete, with every lock file in their way: those git named,
    and those it would meet next (git stops at the first: a ``packed-refs.lock`` hides a
    branch's own ``refs/heads/<branch>.lock``), looked for in the repository's shared git
    directory ``common``, without a git process."""
    kept = tuple(branches)
    return Undeleted(kept, said, locks_in_the_way(common, kept, said))


def locks_in_the_way(common: Path | None, branches: Iterable[str], said: str) -> tuple[str, ...]:
    """Each lock file git named in ``said``, then each there in ``common`` that deleting
    ``branches`` needs: ``packed-refs.lock`` and the branches' own ``.lock``; in order, once."""
    found = list(git_said.locks_in_the_way(said))
    if common is not None:
        there = [
            common / "packed-refs.lock",
            *(common / "refs/heads" / f"{b}.lock" for b in branches),
        ]
        found += [str(lock) for lock in there if lock.exists()]
    return tuple(dict.fromkeys(found))


def together(*found: Undeleted | None) -> Undeleted | None:
    """All of ``found`` as one (every lock of each), None if none."""
    known = [f for f in found if f is not None]
    if not known:
        return None
    branches = tuple(b for f in known for b in f.branches)
    locks = tuple(dict.fromkeys(lock for f in known for lock in f.locks))
    return Undeleted(branches, "\n".join(f.said for f in known), locks)
