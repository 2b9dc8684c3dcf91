"""Whether a checkout is the worktree of one of dagspec's runs (issue 12's leftovers).

A run started inside another run's worktree would record its state in that worktree's
``.autospec/state/``, and the other run's ``cleanup`` would remove it with the worktree: runs
start from the main checkout. The commands that only read runs (``READING``) look there
from a run's worktree, where its runs are recorded; those that change a run, which may
remove or recreate the worktree they are typed in, are sent there. git gives a linked
worktree its own ``--git-dir`` under the main repository's ``--git-common-dir``
(git-worktree(1)), whose parent is the main checkout.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from dagspec import git, state
from dagspec.errors import DagspecError

READING = frozenset({"status", "list", "report", "logs"})
"""The commands that only read the runs: from a run's worktree, they read the main checkout's."""
CHANGING = frozenset({"resume", "retry", "merge", "cleanup"})
"""The commands that change a recorded run: from a run's worktree, they are refused."""


class Owner(NamedTuple):
    """The run and spec whose worktree a checkout is, and the main checkout of both."""

    main: Path
    run_id: str
    spec_id: str


def main_checkout(repo: Path) -> Path | None:
    """The main checkout of the repository whose linked worktree ``repo`` is; None when
    ``repo`` is the main checkout itself (or the repository is bare)."""
    if not (repo / ".git").is_file():  # a main checkout's .git is a directory: no git asked
        return None
    common = git.common_dir(repo)
    if common is None:
        return None
    main = common.parent
    if main.resolve() == repo.resolve() or not (main / ".git").exists():
        return None
    return main


def owner(repo: Path) -> Owner | None:
    """The run and spec whose worktree ``repo`` is (recorded in a run of its main checkout,
    or on a ``dag/<run>/<spec>`` branch); None for a main checkout or a worktree of the
    user's own."""
    main = main_checkout(repo)
    if main is None:
        return None
    here = repo.resolve()
    runs, _ = state.list_runs(main)
    for run in runs:
        for spec in run.specs:
            if spec.worktree and Path(spec.worktree).resolve() == here:
                return Owner(main, run.run_id, spec.id)
    branch = git.current_branch(repo) or ""
    if branch.count("/") >= 2 and branch.startswith("dag/"):
        return Owner(main, branch.split("/")[1], branch.split("/", 2)[2])
    return None


def refusal(repo: Path) -> str | None:
    """Why a run cannot start in ``repo``, when it is a worktree of a run of its main
    checkout; else None."""
    found = owner(repo)
    if found is None:
        return None
    return (
        f"{repo.resolve()} is the worktree of spec {found.spec_id} of run {found.run_id}: "
        f"start runs from the main checkout, `cd {found.main}` (or `dag --repo {found.main} "
        "run ...`)"
    )


def runs_home(repo: Path, command: str) -> Path:
    """The repository whose recorded runs ``command`` means when typed in ``repo``: the
    main checkout for a ``READING`` command in a run's worktree, else ``repo``. Raises
    ``DagspecError`` for a ``CHANGING`` command there (it may remove or recreate the
    worktree it is typed in)."""
    found = owner(repo) if command in READING | CHANGING else None
    if found is None:
        return repo
    if command in READING:
        return found.main
    raise DagspecError(
        f"{repo.resolve()} is the worktree of spec {found.spec_id} of run {found.run_id}, "
        f"which {command} may remove or recreate: run it from the main checkout, "
        f"`cd {found.main}` (or `dag --repo {found.main} {command} ...`)"
    )
