"""``dag cleanup RUN_ID --forget``: a run's own record removed, so that ``dag list`` no
longer shows it, once its clean-up left nothing that only the run knows of.

What goes is dagspec's record of the run: its state file ``<runs>/<run-id>.yaml`` and its
directory ``<runs>/<run-id>/`` (logs, the DAG copy, the lock). The user's work never goes
with it: the branches that hold work not on the base branch stay (cleanup keeps them, and
says so), and a worktree that would stay, with no run left to know it, refuses the
forgetting (``commands.cleanup``), naming what it holds and how to keep it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

from dagspec.errors import StateError
from dagspec.workspace import RunPaths, own_run_directory, resolved


class Stays(NamedTuple):
    """A worktree of the run that its clean-up keeps: what it holds, and its branch."""

    path: Path
    loss: str  # "2 uncommitted files"; "" when git refused to remove it
    branch: str
    uncommitted: bool
    lost: bool = False  # its branch points at a commit the repository no longer has
    busy: str | None = None  # the operation of git's under way in it, and how to end it
    adrift: bool = False  # busy, with commits on no branch: --force keeps it too
    on_no_branch: str | None = None  # not busy: its commits on no branch, how to keep them


def refusal(run_id: str, stays: Stays, *, removed: bool) -> str:
    """Why run ``run_id`` is not forgotten: the worktree ``stays`` would outlive it, and
    what to do; ``removed``: whether the clean-up removed other things meanwhile."""
    head = f"run {run_id} is not forgotten" + ("" if removed else " (nothing was removed)")
    where = f"its worktree {stays.path}"
    if stays.on_no_branch is not None:  # never removed, not even with --force
        said = stays.on_no_branch
        return f"{head}: {where} stays: {said}, then `dag cleanup {run_id} --forget` again"
    if stays.busy is not None:
        lose = ", or add --force to lose what it has not finished"
        if stays.adrift:  # --force never drops a commit
            lose = f" (first keep its commits on no branch: `git -C {stays.path} branch NAME HEAD`)"
        return (
            f"{head}: {where} is in the middle of {stays.busy}: end it, then `dag cleanup "
            f"{run_id} --forget` again{lose}"
        )
    if stays.lost:  # git cannot commit there: ``bad object HEAD``
        return (
            f"{head}: {where} holds {stays.loss}, all that is left of its work (the commit of "
            f"branch {stays.branch} is gone): copy them elsewhere to keep them, or add "
            "--force to lose them"
        )
    if stays.uncommitted:
        return (
            f"{head}: {where} holds {stays.loss}: commit that work there to keep it on "
            f"branch {stays.branch}, which stays, or add --force to lose it"
        )
    held = f" ({stays.loss})" if stays.loss else ""
    return (
        f"{head}: {where}{held} would stay with no run to know it: remove it (`git worktree "
        f"remove {stays.path}`; branch {stays.branch} keeps its commits), then `dag cleanup "
        f"{run_id} --forget` again"
    )


def branches_refusal(run_id: str, count: int) -> str:
    """Why run ``run_id`` is not forgotten: git would not delete ``count`` of its branches
    (each named above, with the lock file in the way), which nothing would delete after."""
    them = "a branch" if count == 1 else f"{count} branches"
    return (
        f"run {run_id} is not forgotten: git could not delete {them} of it, each named above "
        f"with what is in the way: once that is put right, `dag cleanup {run_id} --forget` again"
    )


def forget_run(paths: RunPaths) -> None:
    """Remove the run's state file, then its directory. The state file goes first: a
    command that reads the run after that finds no run, never half of one. The caller
    holds the run's lock (on the directory, which may go while it is held)."""
    try:
        paths.state_file.unlink()
    except OSError as exc:
        raise StateError(
            f"run '{paths.run_id}' is not forgotten: {paths.state_file} could not be removed "
            f"({exc.strerror}): make its directory writable, then try again"
        ) from None
    try:
        _remove_run_directory(paths.run_dir)
    except OSError as exc:
        raise StateError(
            f"run '{paths.run_id}' is forgotten, but {exc.filename or paths.run_dir} could "
            f"not be removed ({exc.strerror}): remove {paths.run_dir} by hand"
        ) from None


def _remove_run_directory(run_dir: Path) -> None:
    """``<runs>/<run-id>/``; moved elsewhere and linked back under its own name
    (``workspace.own_run_directory``), the directory it leads to, then the link."""
    if os.path.islink(run_dir):  # noqa: PTH114 (never raises)
        target = resolved(run_dir)
        if own_run_directory(run_dir, target) and target.is_dir():
            shutil.rmtree(target)
        run_dir.unlink()
    elif run_dir.exists():
        shutil.rmtree(run_dir)


TAKE_OR_DROP = "`git merge BRANCH` takes one's work, `git branch -D BRANCH` drops it"


def take_or_drop(run_id: str, *, rewritten: bool) -> str:
    """How to take or drop a kept branch's work: ``TAKE_OR_DROP``, but never ``git merge``
    for a run whose base branch was rewritten since (it would bring back what was dropped):
    ``dag merge --onto-current`` replays it (``dagspec.onto_advice``)."""
    if not rewritten:
        return TAKE_OR_DROP
    return (
        f"`dag merge {run_id} --onto-current` replays a completed spec's work (`git merge` "
        "would bring back the commits dropped from the base branch), `git branch -D BRANCH` "
        "drops it"
    )


def render_forgotten(run_id: str, *, kept_branches: bool, rewritten: bool = False) -> str:
    """The last line of a forgetting: what went, and where the work kept is."""
    gone = (
        f"forgot run {run_id}: its state file and logs are removed, `dag list` no longer shows it"
    )
    if not kept_branches:
        return gone + "\n"
    return f"{gone}; the branches kept above stay: {take_or_drop(run_id, rewritten=rewritten)}\n"
