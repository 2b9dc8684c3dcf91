"""Whether a checkout is the worktree of one of dagspec's runs (issue 12's leftovers).

A run started inside another run's worktree would record its state in that worktree's
``.autospec/state/``, and the other run's ``cleanup`` would remove it with the worktree: runs
start from a checkout of the user's (the main one, or a linked worktree of their own). The
commands that only read runs (``READING``) look, from a run's worktree, in the checkout
that records that run (one of those ``git worktree list`` names) and mean that run; those
that change a run, which may remove or recreate the worktree they are typed in, are sent
there.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from dagspec import git, git_refs, git_worktree, state
from dagspec.errors import DagspecError, GitError, StateError
from dagspec.workspace import RunPaths, resolved, runs_dir

READING = frozenset({"status", "list", "report", "logs"})
"""The commands that only read the runs: from a run's worktree, they read its run's checkout's."""
CHANGING = frozenset({"resume", "retry", "merge", "cleanup"})
"""The commands that change a recorded run: from a run's worktree, they are refused."""


class Owner(NamedTuple):
    """The run and spec whose worktree a checkout is; ``home``, the checkout that records
    the run (None when none does: its record is gone); ``elsewhere``, where to type what
    cannot be typed in it (``home``, else the main checkout; None when there is none)."""

    home: Path | None
    elsewhere: Path | None
    run_id: str
    spec_id: str

    def where(self) -> str:
        """``the main checkout``, or ``the checkout run <id> was started from``."""
        if self.elsewhere is None or (self.elsewhere / ".git").is_dir():
            return "the main checkout"
        return f"the checkout run {self.run_id} was started from"


class Home(NamedTuple):
    """Where a command typed in a checkout finds its runs, and the run it means when none
    is named (the run whose worktree the checkout is; None: the newest)."""

    repo: Path
    run_id: str | None


def owner(repo: Path) -> Owner | None:
    """The run and spec whose worktree ``repo`` is (on a ``dag/<run>/<spec>`` branch, or
    recorded as a spec's worktree by a run of another checkout), and the checkout of the
    repository that records that run: each checkout ``git worktree list`` names is looked
    at, the main one first. None for a main checkout or a worktree of the user's own."""
    if not (repo / ".git").is_file():  # a main checkout's .git is a directory: no git asked
        return None
    here = resolved(repo)
    try:
        others = [c for c in git_worktree.worktrees(repo) if resolved(c) != here]
    except GitError:
        return None
    branch = git_refs.current_branch(repo) or ""
    if branch.count("/") >= 2 and branch.startswith("dag/"):
        run_id, spec_id = branch.split("/")[1], branch.split("/", 2)[2]
        homes = [c for c in others if (runs_dir(c) / f"{run_id}.yaml").is_file()]
        home = next((c for c in homes if _records(c, run_id, here)), None)
        home = home or (homes[0] if homes else None)
        return Owner(home, home or next(iter(others), None), run_id, spec_id)
    for checkout in others:
        try:
            runs, _ = state.list_runs(checkout)
        except StateError:  # another checkout's runs cannot be read: it records none here
            continue
        for run in runs:
            for spec in run.specs:
                if spec.worktree and resolved(Path(spec.worktree)) == here:
                    return Owner(checkout, checkout, run.run_id, spec.id)
    return None


def _records(checkout: Path, run_id: str, worktree: Path) -> bool:
    """Whether run ``run_id`` of ``checkout`` records ``worktree`` as a spec's."""
    try:
        run = state.load(RunPaths(checkout, run_id))
    except DagspecError:
        return False
    return any(s.worktree and resolved(Path(s.worktree)) == worktree for s in run.specs)


def refusal(repo: Path) -> str | None:
    """Why a run cannot start in ``repo``, when it is a worktree of a run; else None."""
    found = owner(repo)
    if found is None:
        return None
    why = f"{resolved(repo)} is the worktree of spec {found.spec_id} of run {found.run_id}"
    if found.elsewhere is None:
        return f"{why}: start runs from a checkout of your own"
    return (
        f"{why}: start runs from {found.where()}, `cd {found.elsewhere}` (or `dag --repo "
        f"{found.elsewhere} run ...`)"
    )


def runs_home(repo: Path, command: str) -> Home:
    """Where ``command`` typed in ``repo`` finds the runs, and which it means by default:
    for a ``READING`` command in a run's worktree, the checkout that records the run, and
    that run; else ``repo`` and the newest. Raises ``DagspecError`` for a ``CHANGING``
    command there (it may remove or recreate the worktree it is typed in). A run's worktree
    whose run no checkout records is a checkout like any other."""
    found = owner(repo) if command in READING | CHANGING else None
    if found is None or found.home is None:
        return Home(repo, None)
    if command in READING:
        return Home(found.home, found.run_id)
    raise _changing_refused(repo, found, command)


def refuse_changes_from(cwd: Path, command: str) -> None:
    """Refuse a ``CHANGING`` command typed in a run's worktree with ``--repo`` naming its
    checkout: it may remove or recreate the directory the user is in. Raises
    ``DagspecError``."""
    root = git.repo_root(cwd) if command in CHANGING else None
    found = owner(root) if root is not None else None
    if found is not None and found.home is not None:
        raise _changing_refused(root or cwd, found, command)


def _changing_refused(repo: Path, found: Owner, command: str) -> DagspecError:
    return DagspecError(
        f"{resolved(repo)} is the worktree of spec {found.spec_id} of run {found.run_id}, "
        f"which {command} may remove or recreate: run it from {found.where()}, "
        f"`cd {found.home}`"
    )
