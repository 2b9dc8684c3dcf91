"""The checks made before a run: each a small function of the ``Planned`` run that returns
a ``Problem`` (or None), with a message that says how to fix it.

:mod:`dagspec.preflight` runs them in order (README, How a run works) and says what they
found; ``dag doctor`` and ``run --dry-run`` show every result.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import attrs

from dagspec import (
    git,
    git_commit,
    git_config,
    git_merge,
    git_refs,
    git_worktree,
    ledgers,
    own_worktrees,
    state,
)
from dagspec.dagfile import Dag
from dagspec.errors import (
    DagspecError,
    GitError,
    LinkLoopError,
    LockedSigningKey,
    SignerTimedOut,
)
from dagspec.executable import autospec_version, find_autospec
from dagspec.lifecycle import RunOptions, RunStatus
from dagspec.programs import program_problem
from dagspec.workspace import (
    RunPaths,
    merged_branch,
    real_path,
    runs_dir,
    state_dir_blocked,
    worktree_path,
    worktree_root,
)

MIN_GIT_TEXT = git.MIN_GIT_TEXT


@attrs.frozen
class Problem:
    """Something that would make the run fail; a warning (``blocking=False``) does not stop
    it. ``message`` says what is wrong and what to do, in one line."""

    message: str
    blocking: bool = True


@attrs.frozen
class Planned:
    """The run the checks are about. Without ``dag`` (``dag doctor`` alone) only what does
    not depend on a DAG file is checked; ``dag_file`` names that file (as the user gave it)
    in the problems found at one of its lines."""

    repo: Path
    options: RunOptions
    dag: Dag | None = None
    run_id: str | None = None
    dag_file: str | None = None
    _bases: list[tuple[str, str]] = attrs.field(factory=list, eq=False, repr=False)
    _agents: list[tuple[str, str]] = attrs.field(factory=list, eq=False, repr=False)

    @property
    def root(self) -> Path:
        return worktree_root(self.repo, self.options.worktree_root)

    def base(self) -> tuple[str, str]:
        """``base_of`` the planned run, asked of git once (several checks and the run need
        it). Raises ``DagspecError`` as ``base_of`` does, each time."""
        if not self._bases:
            self._bases.append(base_of(self.repo, self.dag))
        return self._bases[0]

    def autospec(self) -> tuple[str, str]:
        """The autospec executable and the first line of its ``--version``, asked once.
        Raises ``DagspecError`` when it is not there or does not answer, each time."""
        if not self._agents:
            try:
                executable = find_autospec(self.options.autospec)
            except DagspecError as exc:
                hint = "" if self.options.autospec else _ran_before(self.repo)
                raise DagspecError(f"{exc}{hint}") from None
            self._agents.append((executable, autospec_version(executable, cwd=self.repo)))
        return self._agents[0]


def _ran_before(repo: Path) -> str:
    """For a new run that found no autospec: the one the newest run of ``repo`` ran, named
    for ``--autospec`` (a new run never takes it on its own: it may be a demo's, or an old
    version); nothing when none is there."""
    if os.environ.get("DAGSPEC_AUTOSPEC"):
        return ""  # it names one that is not there: that is the mistake to put right
    try:
        runs, _ = state.list_runs(repo)
    except DagspecError:
        return ""
    for run in runs:
        if run.autospec and Path(run.autospec).is_file() and os.access(run.autospec, os.X_OK):
            return (
                f" (run '{run.run_id}' ran {run.autospec}: `--autospec {run.autospec}` uses "
                "it again; a new run never does on its own)"
            )
    return ""


# --- the checks -----------------------------------------------------------------------------


def check_git(planned: Planned) -> Problem | None:
    """git is installed and at least ``git.MIN_GIT``."""
    try:
        git.refuse_old_git(planned.repo)
    except GitError:
        return Problem(f"git was not found: install git {MIN_GIT_TEXT} or newer")
    except DagspecError as exc:
        return Problem(str(exc))
    return None


def check_identity(planned: Planned) -> Problem | None:
    """git knows who commits: dagspec commits each spec's work and its merges."""
    missing = [
        who.lower() for who in ("AUTHOR", "COMMITTER") if not git_config.identity(planned.repo, who)
    ]
    if not missing:
        return None
    return Problem(
        f"git has no {' or '.join(missing)} identity: set one with "
        '`git config --global user.name "Your Name"` and '
        "`git config --global user.email you@example.com`"
    )


def check_signer(planned: Planned) -> Problem | None:
    """When ``commit.gpgSign`` is on, git can sign: dagspec signs its merges like the user."""
    if not git_commit.signs_commits(planned.repo):
        return None
    try:
        said = git_commit.try_signing(planned.repo)
    except (LockedSigningKey, SignerTimedOut) as exc:
        return Problem(str(exc))
    if said is None:
        return None
    first = said.splitlines()[0] if said else "no reason given"
    return Problem(
        f"commit.gpgSign is on but git cannot sign a commit ({first}): fix user.signingKey "
        "and gpg.format (try `git commit --allow-empty -S -m test`), or turn commit.gpgSign off"
    )


def check_autospec(planned: Planned) -> Problem | None:
    """The autospec executable is there and answers ``--version``."""
    try:
        planned.autospec()
    except DagspecError as exc:
        return Problem(str(exc))
    return None


_CONSTITUTIONS = tuple(
    f"{place}/memory/constitution.{ext}"
    for place in (".autospec", ".specify")
    for ext in ("yaml", "yml")
)


def check_constitution(planned: Planned) -> Problem | None:
    """The repository has the constitution autospec refuses to run without (contract §5)."""
    if any((planned.repo / name).is_file() for name in _CONSTITUTIONS):
        return None
    return Problem(
        f"{planned.repo} has no autospec constitution ({_CONSTITUTIONS[0]}), and autospec "
        "refuses to run without one: run `autospec init`, then `autospec constitution` (or, "
        "with the demo's simulated autospec, copy the demo repository's one there)"
    )


def check_base(planned: Planned) -> Problem | None:
    """The base branch exists and has a commit."""
    try:
        planned.base()
    except DagspecError as exc:
        return Problem(str(exc))
    return None


def check_filters(planned: Planned) -> Problem | None:
    """Each filter the base commit's ``.gitattributes`` use that git requires
    (``filter.<name>.required``, as `git lfs install` sets) can start its program: else
    every spec's ``git worktree add`` fails (git-lfs's configuration without git-lfs).
    One git process; a second only when a required filter's program is missing."""
    failing = {
        name: (command, problem)
        for name, commands in git_config.required_filters(planned.repo).items()
        for command in commands
        if (problem := program_problem(command, repo=planned.repo))
    }
    try:
        used = (
            git_config.filters_used(planned.repo, planned.base()[1], list(failing))
            if failing
            else ()
        )
    except DagspecError:
        return None  # check_base says why
    named = next((name for name in failing if name in used), None)
    if named is None:
        return None
    command, problem = failing[named]
    return Problem(
        f"every spec's worktree would fail to check out: the filter '{named}' .gitattributes "
        f"uses is required (filter.{named}.required) and its command `{command}` {problem}; "
        f"or unset filter.{named}.required"
    )


def check_checkout(planned: Planned) -> Problem | None:
    """A warning when the base branch's checkout has uncommitted changes: the merge at the
    end would then leave its result on ``dag/<run>/_merged`` instead."""
    try:
        branch, _ = planned.base()
    except DagspecError:
        return None  # check_base says why
    for path, checked_out in git_worktree.worktrees(planned.repo).items():
        if checked_out == branch and path.is_dir() and git_merge.tracked_changes(path):
            return Problem(
                f"{path} has uncommitted changes on {branch}: commit or stash them before the "
                f"run ends, or its result will wait on {merged_branch(planned.run_id or '<run>')}",
                blocking=False,
            )
    return None


def check_autospec_ignored(planned: Planned) -> Problem | None:
    """A warning when ``git status`` shows anything of ``.autospec/`` untracked (README:
    ignore it): run records and all, for good, and ``git add -A`` would commit them. The
    question is git status's, not ``git check-ignore .autospec/``'s, which answered "not
    ignored" for a committed ``.autospec/`` (README: that works too) and for a symbolic link
    ignored by name (``.autospec``, which ``.autospec/`` does not match). One git process,
    so only ``dag doctor`` asks it, never ``dag run``."""
    place = planned.repo / ".autospec"
    if not place.is_dir():
        return None  # check_constitution says what autospec needs
    shown = git_worktree.untracked_files(planned.repo, ".autospec", each=False)
    if not shown:
        return None
    more = f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""
    if shown[0] not in (".autospec", ".autospec/"):  # committed, some of it not ignored
        return Problem(
            f".autospec/ has files git neither tracks nor ignores, so `git status` shows "
            f"{shown[0]}{more} untracked and `git add -A` would commit it: ignore them "
            "(or all of .autospec/) in .gitignore",
            blocking=False,
        )
    rule = ".autospec" if place.is_symlink() else ".autospec/"  # .autospec/ misses a link
    return Problem(
        ".autospec/ is not ignored by git, so `git status` shows it untracked (run records "
        f"and all) and `git add -A` would commit it: `echo {rule} >> .gitignore`",
        blocking=False,
    )


def check_root(planned: Planned) -> Problem | None:
    """The worktree root is a writable directory (or can be made one) outside the repository,
    not a loop of symbolic links (where every spec would fail to make its worktree)."""
    root = planned.root
    try:
        resolved = real_path(root)
    except LinkLoopError as loop:
        return Problem(
            f"the worktree root {_looped(str(root), loop)}: remove the link, or choose "
            "another root with --worktree-root"
        )
    if resolved.is_relative_to(real_path(planned.repo)):
        return Problem(
            f"the worktree root {root} is inside the repository {planned.repo}: "
            "choose a place outside it with --worktree-root"
        )
    if not root.exists() and not root.parent.exists():
        return Problem(
            f"neither the worktree root {root} nor its parent directory exists: create the "
            "parent first (dagspec makes one level of directory, no more)"
        )
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return Problem(
            f"the worktree root {root} cannot be written ({existing} is not a writable "
            "directory): make it writable, or choose another with --worktree-root"
        )
    return None


def check_paths(planned: Planned) -> Problem | None:
    """Nothing is at the run's worktree paths: dagspec never removes or writes through it."""
    if planned.dag is None or planned.run_id is None or _recorded(planned):
        return None
    run_dir = planned.root / planned.run_id
    taken = [run_dir] if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()) else []
    taken += [
        path
        for spec_id in planned.dag.features
        if os.path.lexists(path := worktree_path(planned.root, planned.run_id, spec_id))
    ]
    if not taken:
        return None
    return Problem(
        f"{_names(map(str, taken))} already there, where this run's worktrees go: dagspec "
        "never writes into or removes what it did not make; move it away, or use another "
        "--worktree-root or --run-id"
    )


def check_branches(planned: Planned) -> Problem | None:
    """No branch is in the way of ``dag/<run>/<spec>``: neither one of those names nor a
    branch named like one of their parents (git keeps refs as files). A branch ``dag`` is in
    the way of every run, recorded or not, whatever its id: only renaming it helps."""
    if planned.dag is None or planned.run_id is None:
        return None
    found = git_refs.refs(planned.repo, "refs/heads/dag")
    if "refs/heads/dag" in found:
        return _branch_named_dag(planned)
    if _recorded(planned):
        return None
    prefix = f"refs/heads/dag/{planned.run_id}"
    clash = [r for r in found if r == prefix or r.startswith(prefix + "/")]
    if not clash:
        return None
    names = _names(ref.removeprefix("refs/heads/") for ref in clash)
    return Problem(
        f"the branch names this run needs are taken ({names}): rename those branches "
        "(`git branch -m`), or choose another --run-id"
    )


def _branch_named_dag(planned: Planned) -> Problem:
    """git cannot hold a branch ``dag`` beside the branches ``dag/<run>/<spec>`` (refs are
    files, and ``refs/heads/dag`` cannot be a file and a directory), so no run id helps."""
    try:
        base = planned.base()[0] == "dag"
    except DagspecError:
        base = False
    what = "your base branch 'dag'" if base else "a branch named 'dag'"
    named = base and planned.dag is not None and planned.dag.execution.base_branch == "dag"
    then = " and set `execution.base_branch: dag-base` in the DAG file" if named else ""
    return Problem(
        f"{what} is in the way of dagspec's branches dag/<run>/<spec> (git cannot have a "
        f"branch 'dag' and branches under 'dag/'): rename it, `git branch -m dag dag-base`{then}"
    )


def check_main_checkout(planned: Planned) -> Problem | None:
    """The repository is not a worktree of another run (``dagspec.own_worktrees``)."""
    why = own_worktrees.refusal(planned.repo)
    return None if why is None else Problem(why)


def check_places(planned: Planned) -> Problem | None:
    """The places dagspec writes in the repository (the run's state, ``specs/<id>``) do not
    lead, through a symlink, outside it, or into a loop of symlinks; no file is where the
    directory of the runs' state (or one of its parents) goes."""
    repo = real_path(planned.repo)
    if (blocked := state_dir_blocked(planned.repo)) is not None:
        return Problem(blocked)
    places = [runs_dir(planned.repo)]
    if planned.dag is not None:
        places += [planned.repo / "specs" / spec_id for spec_id in planned.dag.features]
    outside: dict[Path, Path] = {}
    for place in places:
        try:
            real = real_path(place)
        except LinkLoopError as loop:
            return Problem(
                f"{_looped(str(place.relative_to(planned.repo)), loop)}: dagspec writes "
                "there; replace the symlink with a directory, or remove it"
            )
        if not real.is_relative_to(repo):
            outside[place] = real
    if not outside:
        return None
    return Problem(
        f"{_names(str(p.relative_to(planned.repo)) for p in outside)} leads outside the "
        f"repository through a symlink ({next(iter(outside.values()))}): dagspec writes "
        "there; replace the symlink with a directory"
    )


def check_ledger(planned: Planned) -> Problem | None:
    """The ledger of spec numbers (``ledgers.SPEC_NUMBERS``) can be read and written: else
    every spec would fail at its specify, once its worktree is made."""
    said = ledgers.problem(planned.repo, ledgers.SPEC_NUMBERS)
    return Problem(said) if said else None


def _looped(place: str, loop: LinkLoopError) -> str:
    """``place`` said to be, or to lead through, a link that leads back to itself."""
    if loop.link == place or loop.link.endswith(os.sep + place):
        return f"{place} is a symbolic link that leads back to itself (a loop of links)"
    return f"{place} leads through a loop of symbolic links ({loop.link} leads back to itself)"


def check_notify(planned: Planned) -> Problem | None:
    """``--notify CMD`` starts a program that exists (``execution.notify`` is the DAG
    file's, checked with its line: ``dagfile.missing_programs``)."""
    command = planned.options.notify
    problem = program_problem(command, repo=planned.repo) if command else None
    return Problem(f"--notify {problem}") if problem else None


def check_run_free(planned: Planned) -> Problem | None:
    """A run of this id does not exist already; the message says what can be done with the
    one that does (wait for it, resume it, or pick another id), by its status."""
    if not _recorded(planned):
        return None
    run_id = planned.run_id
    try:
        recorded = state.settled(state.load(RunPaths(planned.repo, run_id or "")))
    except DagspecError:
        return Problem(f"run '{run_id}' exists already: choose another --run-id")
    status, pid = recorded.status, recorded.driver_pid
    if status is RunStatus.RUNNING:
        return Problem(
            f"run '{run_id}' is being driven by process {pid}: wait for it to finish, "
            "or choose another --run-id"
        )
    if status in (RunStatus.FAILED, RunStatus.INTERRUPTED):
        return Problem(
            f"run '{run_id}' exists already and did not finish: continue it with "
            f"`dag resume {run_id}`, or choose another --run-id"
        )
    return Problem(f"run '{run_id}' exists already: choose another --run-id")


def _recorded(planned: Planned) -> bool:
    """Whether the planned run id names a recorded run (then its paths and branches are
    that run's, and only ``check_run_free`` speaks of them)."""
    return planned.run_id is not None and RunPaths(planned.repo, planned.run_id).state_file.exists()


def _names(items: Iterable[str]) -> str:
    listed = list(items)
    return ", ".join(listed[:3]) + (f" and {len(listed) - 3} more" if len(listed) > 3 else "")


def base_of(repo: Path, dag: Dag | None) -> tuple[str, str]:
    """The branch the run merges into and its commit (README, How a run works)."""
    given = dag.execution.base_branch if dag is not None else None
    branch = given or git_refs.current_branch(repo)
    if branch is None:
        raise DagspecError(
            f"HEAD is detached in {repo}: check out the branch the run should merge into, "
            "or set execution.base_branch in the DAG file"
        )
    commit = git_refs.rev_parse(repo, f"refs/heads/{branch}")
    if commit is None and branch == given:
        raise DagspecError(f"the base branch '{branch}' does not exist in {repo}")
    if commit is None:
        raise DagspecError(
            f"the branch '{branch}' has no commit yet: commit something first "
            "(the run's worktrees start from it)"
        )
    return branch, commit
