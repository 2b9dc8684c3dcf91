"""Branches of a run that git would not delete once the run was merged (a stale lock file
in its way): cleanup, not the merge. The merge is done and recorded whatever is left here,
and one line says what to do (README, Merging)."""

from __future__ import annotations

import attrs

from dagspec import git_said


@attrs.frozen
class Undeleted:
    """The run's ``branches`` git did not delete, and what it ``said`` (its stderr)."""

    branches: tuple[str, ...]
    said: str

    def line(self, run_id: str) -> str:
        """One line: the merge done, which branches stay, why (the lock file, named, to
        delete when no git is running), and ``dag cleanup RUN`` then."""
        lock = git_said.lock_in_the_way(self.said)
        why = git_said.lock_advice(lock) if lock else git_said.gist(self.said) or "git failed"
        shown = ", ".join(self.branches) or "the run's branches"
        return (
            f"the merge of run {run_id} is done and recorded, but git did not delete {shown}: "
            f"{why}; then `dag cleanup {run_id}` deletes them"
        )


def together(*found: Undeleted | None) -> Undeleted | None:
    """All of ``found`` as one (its first reason: they met the same lock), None if none."""
    known = [f for f in found if f is not None]
    if not known:
        return None
    branches = tuple(b for f in known for b in f.branches)
    return Undeleted(branches, known[0].said)
