"""A spec's worktree the user switched off its branch: refused before its agent runs.

``worktree.collect_work`` puts an agent's work on the spec's branch after it exits 0, and
refuses a worktree on a branch of the user's, or detached at a commit that does not hold
the spec's branch: only after a whole attempt of the agent. ``retry`` and ``resume`` ask
``refuse_off_branch`` first (``driving.check_branches``), from the worktree's ``HEAD``
file: no git process for a worktree on a branch.
"""

from __future__ import annotations

from pathlib import Path

from dagspec import compat, git_refs, git_worktree
from dagspec.errors import DagspecError


def refuse_off_branch(
    repo: Path, worktree: Path, spec_id: str, run_id: str, branch_and_again: tuple[str, str]
) -> None:
    """Raise ``DagspecError`` when the spec's worktree is on another branch than ``branch``
    (not one autospec made, ``compat.adoptable``), or detached at a commit that does not
    descend from ``branch``: the agent's work could not be put on the spec's branch. A
    worktree that is not there, or not git's (``git_worktree.is_registered``), is left to
    ``worktree.reopen_worktree``; a detached ``HEAD`` with commits on no branch, to
    ``adrift.refuse_taking_up``."""
    branch, again = branch_and_again
    own = git_worktree.gitfile_target(worktree)
    if own is None or not worktree.is_dir() or not git_worktree.is_registered(worktree):
        return
    try:
        head = (own / "HEAD").read_text("utf-8", "surrogateescape").strip()
    except OSError:
        return
    spec = f"the worktree {worktree} of spec {spec_id} of run {run_id}"
    back = f"`git -C {worktree} switch {branch}`"
    if head.startswith("ref: refs/heads/"):
        name = head.removeprefix("ref: refs/heads/")
        if name == branch or compat.adoptable(worktree, name):
            return
        raise DagspecError(
            f"{spec} is on the branch {name}, not its branch {branch}, and {name} is not one "
            f"autospec made: dagspec leaves it as it is; switch it back ({back}, then "
            f"`git -C {worktree} merge {name}` if {name} holds the spec's work), then `{again}`"
        )
    if head.startswith("ref:") or git_refs.rev_parse(repo, f"refs/heads/{branch}") is None:
        return  # an unborn or deleted branch: ``driving.check_branches`` says so
    if git_refs.is_ancestor(repo, f"refs/heads/{branch}", head):
        return  # its agent's work goes on the branch (``collect_work`` moves it there)
    raise DagspecError(
        f"{spec} is detached at {head[:12]}, which does not hold its branch {branch}: the "
        f"agent's work could not go on that branch; switch it back ({back}), then `{again}`"
    )
