"""A run whose repository was moved or renamed since it was recorded (issue 13 item 7).

The run's record holds absolute paths: the repository, each spec's worktree and log, the
worktree root. After ``mv repo repo2`` (and, often, ``mv repo.worktrees repo2.worktrees``)
they name places that are gone, and git's own links between the repository and its linked
worktrees dangle in both directions: the worktree's ``.git`` file names the old
``<repo>/.git/worktrees/<name>``, and the repository's ``gitdir`` file names the worktree's
old place. ``arrive`` re-bases the recorded paths on where the repository is now and has git
mend its links (``git worktree repair <path>...``, git 2.29 or newer: "If both the main
worktree and linked worktrees have been moved or copied manually, then running repair in the
main worktree and specifying the new <path> of each linked worktree will reestablish all
connections in both directions", git-worktree(1)). A worktree that is not found at either
place is recreated from its branch when its spec restarts (``worktree.reopen_worktree``).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from dagspec import git_worktree, state
from dagspec.errors import StateError
from dagspec.lifecycle import RunState
from dagspec.workspace import RunPaths, branch_name, default_worktree_root


def arrive(paths: RunPaths, run: RunState) -> RunState:
    """``run`` as seen from the repository ``paths.repo``, where its state file was found:
    the same record when it was recorded there, else its paths re-based (``rebase``), git's
    links to the worktrees found mended, and the record saved, a killed driver's settled
    first (``state.settled``: saved as it was, its end would move to now). Call it holding
    the run's lock.

    Raises ``StateError`` when the recorded repository is still there and is not this one:
    this is a copy, whose worktree links are the original's, so the run is continued there.
    """
    repo, recorded = paths.repo, Path(run.repo)
    if recorded == repo or _same_directory(recorded, repo):
        return run
    if recorded.exists():
        raise StateError(
            f"run '{run.run_id}' was started in {recorded}, which is still there: this "
            f"repository is a copy of it; continue the run there (`dag --repo {recorded} "
            f"resume {run.run_id}`)"
        )
    moved = state.settled(rebase(run, repo))  # read where its files are now
    found = [Path(s.worktree) for s in moved.specs if s.worktree and Path(s.worktree).is_dir()]
    if found:
        git_worktree.repair_worktrees(repo, found)
    _forget_dead(repo, run)
    state.save(moved, paths.state_file)
    return moved


def seen_from(repo: Path, run: RunState) -> RunState:
    """``run`` as a reader in ``repo`` should show it (``dag status``, ``dag report``): its
    paths re-based when its recorded repository is gone, as ``arrive`` would record them on
    the next ``resume``; nothing is written or mended."""
    recorded = Path(run.repo)
    if recorded == repo or recorded.exists():
        return run
    return rebase(run, repo)


def _forget_dead(repo: Path, run: RunState) -> None:
    """Drop git's registrations of this run's worktrees whose directory is gone (deleted
    before or after the move): one left would hold its branch as checked out, so neither
    the end of the run nor ``cleanup`` could delete that branch. ``git worktree remove``
    of a missing directory removes only the registration."""
    ours = {branch_name(run.run_id, s.id) for s in run.specs}
    for path, branch in git_worktree.worktrees(repo).items():
        if branch in ours and not path.exists():
            git_worktree.remove_worktree(repo, path)


def _same_directory(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False


def rebase(run: RunState, repo: Path) -> RunState:
    """The record with its repository ``repo`` and every recorded path re-based: one inside
    the old repository (logs) moves with it; one under the old default worktree root
    (``<old parent>/<old name>.worktrees``) moves to the new default root unless it is
    still where it was (worktrees left behind stay where they are, git's links mended)."""
    old = Path(run.repo)
    moves = _Moves(old, repo, default_worktree_root(old), default_worktree_root(repo))
    specs = tuple(
        attrs.evolve(spec, worktree=moves.path(spec.worktree), log=moves.path(spec.log))
        for spec in run.specs
    )
    options = attrs.evolve(run.options, worktree_root=moves.path(run.options.worktree_root))
    return attrs.evolve(run, repo=str(repo), specs=specs, options=options)


@attrs.frozen
class _Moves:
    old_repo: Path
    new_repo: Path
    old_root: Path
    new_root: Path

    def path(self, recorded: str | None) -> str | None:
        if recorded is None:
            return None
        where = Path(recorded)
        if where.is_relative_to(self.old_repo):
            return str(self.new_repo / where.relative_to(self.old_repo))
        if where.is_relative_to(self.old_root) and not where.exists():
            return str(self.new_root / where.relative_to(self.old_root))
        return recorded
