"""Names and places: run ids, state and log paths, worktree paths and branch names.

Everything a run writes lives under ``<repo>/.autospec/state/dag-runs/`` (README, Files on disk)
except the worktrees, which live under the worktree root as ``<root>/<run-id>/<spec-id>``
(default root: ``<parent of the repo>/<repo dir name>.worktrees``), so that two runs, or
two repositories side by side, never share a path.
"""

from __future__ import annotations

import errno
import os
import re
from datetime import datetime
from pathlib import Path

import attrs

from dagspec.errors import DagspecError, LinkLoopError, StateError

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


@attrs.frozen
class RunPaths:
    """Where one run keeps its files."""

    repo: Path
    run_id: str

    @property
    def runs_dir(self) -> Path:
        return self.repo / ".autospec" / "state" / "dag-runs"

    @property
    def state_file(self) -> Path:
        return self.runs_dir / f"{self.run_id}.yaml"

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run_id

    @property
    def lock_file(self) -> Path:
        return self.run_dir / "lock"

    @property
    def dag_copy(self) -> Path:
        """The DAG file as it was when the run started; resume and retry continue it."""
        return self.run_dir / "dag.yaml"

    def log_file(self, spec_id: str) -> Path:
        return self.run_dir / "logs" / f"{spec_id}.log"

    def kept_tasks(self, spec_id: str) -> Path:
        """The last whole ``tasks.yaml`` of the spec dagspec read, put back if a killed
        agent leaves the worktree's copy torn."""
        return self.run_dir / "tasks" / f"{spec_id}.yaml"

    def autospec_state_dir(self, spec_id: str) -> Path:
        """Each agent's own ``AUTOSPEC_STATE_DIR``: autospec's global one is shared and raced."""
        return self.run_dir / "autospec-state" / spec_id


def current_directory() -> Path:
    """The current directory; ``DagspecError`` when it was deleted (or moved) under the
    shell that started dag, where ``os.getcwd`` fails."""
    try:
        return Path.cwd()
    except FileNotFoundError:
        raise DagspecError(
            "the current directory no longer exists (deleted or moved): cd into your "
            "repository, or pass --repo DIR"
        ) from None


def resolved(path: Path) -> Path:
    """``path`` absolute, its links followed; a loop of links is left in it as it is (no real
    place equals it). For comparing places: ``Path.resolve`` raises ``RuntimeError`` at a
    loop before Python 3.13, a bug in dagspec for what a user's links can do."""
    return Path(os.path.realpath(path))


def real_path(path: Path) -> Path:
    """``path`` absolute, its links followed (``Path.resolve``), whether it exists or not:
    for a place dagspec writes through.

    Raises ``LinkLoopError``, naming the link where the loop starts, when a loop of links is
    on the way: ``Path.resolve`` raises ``RuntimeError`` there before Python 3.13, and from
    3.13 returns the path with the loop left in it, which no later call can use either.
    """
    try:
        return Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # missing, or not a directory: as Path.resolve
            return Path(os.path.realpath(path))
    absolute = path.absolute()  # not normalized: `a/../b` goes through `a`, as the system does
    on_the_way = (*reversed(absolute.parents), absolute)
    raise LinkLoopError(str(next((p for p in on_the_way if _loops(p)), absolute)))


def _loops(path: Path) -> bool:
    try:
        os.path.realpath(path, strict=True)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def runs_dir(repo: Path) -> Path:
    return RunPaths(repo, "x").runs_dir


def runs_directory(repo: Path) -> Path:
    """``runs_dir(repo)``, where the runs of ``repo`` are recorded, for reading them: no loop
    of symbolic links is on the way, where listing finds no file and reading fails, which
    would read as "no runs yet" or "no run 'x'".

    Raises:
        StateError: a loop is on the way, naming the link where it starts; a file is where
            it, or a directory on the way to it, goes (``state_dir_blocked``).
    """
    place = runs_dir(repo)
    if (blocked := state_dir_blocked(repo)) is not None:
        raise StateError(blocked)
    try:
        real_path(place)
    except LinkLoopError as loop:
        said = f"{place} is a symbolic link that leads back to itself (a loop of links)"
        if loop.link != str(place):
            said = f"{place} leads through a loop of symbolic links ({loop.link} is one)"
        raise StateError(
            f"{said}, so the runs of {repo} recorded there cannot be read: point {loop.link} "
            "at the directory they are in, or remove it"
        ) from None
    return place


def state_dir_blocked(repo: Path) -> str | None:
    """Why the runs of ``repo`` can be neither recorded nor read: a file (not a directory,
    nor a link to one) is where their directory, or a directory on the way to it, goes;
    None when none is."""
    where = runs_dir(repo)
    for place in (where, *where.parents):
        if place == repo or not place.is_relative_to(repo):
            return None
        if os.path.lexists(place) and not place.is_symlink() and not place.is_dir():
            return (
                f"{place} is a file, where dagspec keeps the state of the runs of this "
                f"repository (in {where.relative_to(repo)}/): move the file away"
            )
    return None


def default_worktree_root(repo: Path) -> Path:
    """``<parent>/<repo dir name>.worktrees``: beside the repository, never inside it."""
    return repo.parent / f"{repo.name}.worktrees"


def worktree_root(repo: Path, given: str | None) -> Path:
    """The root the run's options name, else the default one."""
    return Path(given) if given else default_worktree_root(repo)


def worktree_path(root: Path, run_id: str, spec_id: str) -> Path:
    """``<root>/<run-id>/<spec-id>``: no other run, and no other repository, has it."""
    return root / run_id / spec_id


def branch_name(run_id: str, spec_id: str) -> str:
    return f"dag/{run_id}/{spec_id}"


def merged_branch(run_id: str) -> str:
    """Where a merge result waits when the user's checkout of the base branch is dirty;
    ``_`` cannot start a spec id, so no spec's branch can take this name."""
    return f"dag/{run_id}/_merged"


def slug(text: str) -> str:
    """``"Q1 Features"`` -> ``"q1-features"``; never empty."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-") or "dag"


def new_run_id(dag_name: str, now: datetime) -> str:
    return f"{slug(dag_name)}-{now:%Y%m%d-%H%M%S}"


def check_run_id(run_id: str) -> str:
    """A run id becomes a file name and part of branch names: keep it to safe characters."""
    if not _RUN_ID.match(run_id) or ".." in run_id or run_id.endswith((".", ".lock")):
        raise DagspecError(
            f"run id '{run_id}' is not valid: use at most 100 letters, digits, '.', '_' "
            "and '-', starting with a letter or digit"
        )
    return run_id


def own_run_directory(place: Path, real: Path) -> bool:
    """Whether ``real``, where a run's directory ``place`` (``<root>/<run-id>``, its
    worktrees; ``<runs>/<run-id>``, its state) leads through links, is that run's own: the
    directory itself, or one it was moved to (another disk, say) and linked back from,
    keeping its name. A link to a directory of another name (another run's, among them) is
    not: nothing of the run is written through it, and a state file that records one is not
    that run's."""
    return real.name == place.name


def ignore_in_git(directory: Path) -> None:
    """Runs' files are never part of the user's commits, even after ``git add -A``."""
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by dagspec: run state and logs stay out of git\n*\n")
