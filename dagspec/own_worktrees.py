"""Whether a checkout is the worktree of one of dagspec's runs (issue 12's leftovers).

A run started inside another run's worktree would record its state in that worktree's
``.autospec/state/``, and the other run's ``cleanup`` would remove it with the worktree: runs
start from the main checkout. git gives a linked worktree its own ``--git-dir`` under the main
repository's ``--git-common-dir`` (git-worktree(1)), whose parent is the main checkout.
"""

from __future__ import annotations

from pathlib import Path

from dagspec import git, state


def main_checkout(repo: Path) -> Path | None:
    """The main checkout of the repository whose linked worktree ``repo`` is; None when
    ``repo`` is the main checkout itself (or the repository is bare)."""
    common = git.common_dir(repo)
    if common is None:
        return None
    main = common.parent
    if main.resolve() == repo.resolve() or not (main / ".git").exists():
        return None
    return main


def refusal(repo: Path) -> str | None:
    """Why a run cannot start in ``repo``, when it is a worktree of a run of its main
    checkout (recorded there, or on a ``dag/<run>/<spec>`` branch); else None."""
    main = main_checkout(repo)
    if main is None:
        return None
    here = repo.resolve()
    runs, _ = state.list_runs(main)
    owner = next(
        (
            (run.run_id, spec.id)
            for run in runs
            for spec in run.specs
            if spec.worktree and Path(spec.worktree).resolve() == here
        ),
        None,
    )
    branch = git.current_branch(repo) or ""
    if owner is None and branch.count("/") >= 2 and branch.startswith("dag/"):
        owner = (branch.split("/")[1], branch.split("/", 2)[2])
    if owner is None:
        return None
    run_id, spec_id = owner
    return (
        f"{here} is the worktree of spec {spec_id} of run {run_id}: start runs from the main "
        f"checkout, `cd {main}` (or `dag --repo {main} run ...`)"
    )
