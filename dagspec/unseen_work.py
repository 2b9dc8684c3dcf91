"""What removing a spec's worktree would lose that ``git status`` does not show.

``worktree.unsaved_work`` lists changed and untracked files. Two kinds of an agent's work
escape it, and went with the worktree while the run said "completed, merged":

- **Commits in a submodule.** A worktree's submodules keep their repositories inside the
  worktree's own git directory (``.git/worktrees/<wt>/modules/<name>``), which goes with the
  worktree. A commit made there and pushed nowhere exists nowhere else, yet the spec's
  commit (and so the base branch) points at it. ``submodule_commits`` finds such commits:
  reachable from the submodule's ``HEAD``, branches or tags, not from its remote-tracking
  branches, and absent from the main repository's own store of that submodule. Only a
  worktree that has such stores is asked (git refuses to remove it without ``--force``
  anyway), so a plain spec costs no git process more.
- **Files git ignores.** git counts them disposable, but an agent that wrote its code under
  an ignored ``src/`` left all of it there. To tell that from a real project's
  ``__pycache__/`` or ``node_modules/``, which every worktree holds: only a spec whose
  merge changed nothing outside its spec directory (``quiet_specs``: one ``git log`` for all
  the run's merged specs) is looked at, and then its worktree is walked, without git, for
  files written since its attempt started (``written_since``) outside ``.git``, its spec
  directory, the configuration dagspec copied in and nested repositories.

Either keeps the worktree, named with what it holds and what to do (``Unseen.advice``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from dagspec.adrift import held, keep_them
from dagspec.errors import GitError
from dagspec.git import run
from dagspec.git_merge import changed_paths
from dagspec.git_output import lines
from dagspec.git_worktree import commondir_of
from dagspec.lifecycle import RunState, SpecState
from dagspec.words import counted
from dagspec.workspace import branch_name
from dagspec.worktree import COPIED, git_dir, made_at, ready_at

SHOWN = 3
"""How many files or commits a message names before "...". """


class Unseen(NamedTuple):
    """What a worktree holds that git status does not show, and where it is."""

    path: Path
    commits: tuple[str, ...] = ()  # "<submodule> <short sha> <subject>"
    ignored: tuple[str, ...] = ()  # files written during the spec's run, relative
    spec_dir: str | None = None
    adrift: tuple[str, ...] = ()  # "<short sha> <subject>" on no branch: ``dagspec.adrift``
    gone: str = ""  # its branch deleted under it: ``adrift.branch_deleted`` says how to bring it

    def __bool__(self) -> bool:
        return bool(self.commits or self.ignored or self.adrift or self.gone)

    def items(self) -> tuple[str, ...]:
        """One line per thing lost (``dag cleanup --force`` lists them)."""
        commits = tuple(f"submodule commit {c}, found only in this worktree" for c in self.commits)
        return commits + tuple(f"{name} (ignored by git)" for name in self.ignored)

    def loss(self) -> str:
        """``1 submodule commit found only here, 3 files git ignores``."""
        parts = []
        if self.commits:
            parts.append(counted(len(self.commits), "submodule commit") + " found only here")
        if self.ignored:
            parts.append(counted(len(self.ignored), "file") + " git ignores")
        return ", ".join(parts)

    def advice(self) -> str:
        """Why the worktree is kept, and what to do, for the end of a run and ``dag merge``.
        A worktree whose branch was deleted under it is removed without ``--force`` once the
        branch is back: git then refuses while it has uncommitted changes."""
        if self.gone:
            return f"{self.gone}; then `git worktree remove {self.path}`"
        adrift = list(self.adrift)
        said = [f"{held(adrift)}: {keep_them(adrift)}"] if adrift else []
        submodules = dict.fromkeys(c.split(" ", 1)[0] for c in self.commits)
        for name in submodules:
            commits = tuple(c.split(" ", 1)[1] for c in self.commits if c.startswith(name + " "))
            first = commits[0].split(" ", 1)[0]
            said.append(
                f"its submodule {name} has {counted(len(commits), 'commit')} found only in "
                f"this worktree ({_listed(commits)}), which the spec's commit may point at: "
                f"push it from {self.path / name}, or fetch it into your checkout's "
                f"(`git -C {name} fetch {self.path / name} {first}`)"
            )
        if self.ignored:
            where = f"its spec directory {self.spec_dir}" if self.spec_dir else "nothing"
            said.append(
                f"its merge changed only {where}, yet its worktree holds "
                f"{counted(len(self.ignored), 'file')} written during its run that git "
                f"ignores ({_listed(self.ignored)}), maybe its work: check .gitignore and "
                f"copy out what you need"
            )
        return "; ".join(said) + f"; then `git worktree remove --force {self.path}`"


def _listed(items: tuple[str, ...]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


# --- submodules ------------------------------------------------------------------------------


def submodule_commits(worktree: Path) -> list[str]:
    """``<submodule> <short sha> <subject>`` of each commit that exists only in the stores
    of the worktree's submodules inside its git directory, newest first per submodule;
    empty, with no git process, when the worktree has no such store."""
    own = git_dir(worktree)
    if own is None or not (own / "modules").is_dir():
        return []
    common = commondir_of(own)
    found: list[str] = []
    for name, store in _stores(own / "modules", ""):
        out = run(store, "log", "--format=%H %h %s", "HEAD", "--branches", "--tags", "--not",
                  "--remotes", "--", check=False)  # fmt: skip
        commits = [(sha, rest) for sha, _, rest in (ln.partition(" ") for ln in lines(out))]
        elsewhere = common / "modules" / name if common is not None else None
        if commits and elsewhere is not None and (elsewhere / "HEAD").is_file():
            shas = [sha for sha, _ in commits]
            there = run(elsewhere, "rev-list", "--no-walk", "--ignore-missing", *shas,
                        check=False)  # fmt: skip
            commits = [(sha, rest) for sha, rest in commits if sha not in set(lines(there))]
        found += [f"{name} {rest}" for _, rest in commits]
    return found


def _stores(modules: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """``(name, store)`` of each submodule repository under ``modules`` (a directory with
    ``HEAD`` and ``objects``), nested ones (``<store>/modules``) included."""
    for top, dirs, _ in os.walk(modules):
        here = Path(top)
        if (here / "HEAD").is_file() and (here / "objects").is_dir():
            dirs.clear()
            name = prefix + here.relative_to(modules).as_posix()
            yield name, here
            if (here / "modules").is_dir():
                yield from _stores(here / "modules", name + "/")


# --- files git ignores -----------------------------------------------------------------------


def quiet_specs(repo: Path, run_state: RunState, ids: Iterable[str]) -> set[str]:
    """The specs among ``ids`` whose merge commit on the base branch changed nothing outside
    their spec directory, asked of git in one process for all of them (``log --no-walk``,
    each commit against its first parent); and those recorded merged with no merge commit
    of their own ("already merged": a DAG run again) whose branch changed nothing outside
    their spec directory since the run's base commit (a git process each, only for them). A
    spec with no attempt's start is left out, as is every spec when git cannot answer."""
    specs = [run_state.spec(i) for i in ids]
    commits = {s.merge_commit: s for s in specs if s.merge_commit and s.started_at}
    without = [s for s in specs if s.merged and not s.merge_commit and s.started_at]
    quiet = {s.id for s in without if _branch_quiet(repo, run_state, s)}
    if not commits:
        return quiet
    try:
        out = run(repo, "log", "--no-walk=unsorted", "-z", "--format=%x01%H", "--name-only",
                  "--diff-merges=first-parent", *commits, "--")  # fmt: skip
    except GitError:
        return quiet
    changed: dict[str, list[str]] = {}
    for chunk in out.split("\x01")[1:]:
        sha, _, names = chunk.partition("\0")
        changed[sha] = [name for name in names.lstrip("\n").split("\0") if name]
    for sha, spec in commits.items():
        full = next((c for c in changed if c.startswith(sha)), None)
        if full is not None and _inside(spec, changed[full]):
            quiet.add(spec.id)
    return quiet


def _inside(spec: SpecState, names: Iterable[str]) -> bool:
    """Whether every path of ``names`` is in the spec's directory (none is, with none)."""
    inside = f"{spec.spec_dir}/" if spec.spec_dir else None
    return all(inside and n.startswith(inside) for n in names)


def _branch_quiet(repo: Path, run_state: RunState, spec: SpecState) -> bool:
    """Whether the spec's branch changed nothing outside its spec directory since the run's
    base commit; False when git cannot tell (the branch or the commit gone)."""
    branch = spec.branch or branch_name(run_state.run_id, spec.id)
    try:
        names = changed_paths(repo, f"{run_state.base_commit}...refs/heads/{branch}")
    except GitError:
        return False
    return _inside(spec, names)


def written_since(
    worktree: Path, moment: float, spec_dir: str | None, *, ready: float | None = None
) -> list[str]:
    """The files under ``worktree`` written after ``moment`` (sorted, relative), with no
    git: ``.git``, the spec directory, the configuration dagspec copies in and any nested
    repository (a submodule's checkout) are passed over. Written means modified after
    ``moment`` or changed after ``ready`` (``moment`` when None): ``st_ctime``, which no tool
    can set back as ``tar x``, ``cp -p`` or ``unzip`` set the modification time back.
    ``ready``: when ``execution.copy`` and ``setup`` were done, whose files keep their
    source's modification time but not its change time."""
    ready = moment if ready is None else max(ready, moment)
    skipped = {".git", *COPIED, *([spec_dir] if spec_dir else [])}
    found = []
    for top, dirs, files in os.walk(worktree):
        here = Path(top)
        rel = here.relative_to(worktree)
        dirs[:] = [
            d
            for d in dirs
            if (rel / d).as_posix() not in skipped and not os.path.lexists(here / d / ".git")
        ]
        for name in files:
            path = (rel / name).as_posix()
            if path in skipped:
                continue
            try:
                status = os.lstat(here / name)
            except OSError:
                continue
            if status.st_mtime > moment or status.st_ctime > ready:
                found.append(path)
    return sorted(found)


def unseen(
    path: Path, run_state: RunState, spec_id: str, *, quiet: set[str], submodules: bool
) -> Unseen:
    """What the worktree ``path`` of ``spec_id`` holds beyond git status: its submodules'
    commits found only there (asked only when ``submodules``: git refused to remove it), and
    when the spec is ``quiet`` the files written since its attempt started."""
    spec = run_state.spec(spec_id)
    commits = tuple(submodule_commits(path)) if submodules else ()
    ignored: tuple[str, ...] = ()
    if spec_id in quiet and path.is_dir():
        made = made_at(path)
        if made is None and spec.started_at is not None:  # not marked: its start, in seconds
            made = spec.started_at.replace(microsecond=0).timestamp() + 1
        if made is not None:
            ignored = tuple(written_since(path, made, spec.spec_dir, ready=ready_at(path)))
    return Unseen(path, commits, ignored, spec.spec_dir)
