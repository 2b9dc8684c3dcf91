"""A spec's worktree: made ready for autospec before it runs, its work on its branch after.

Synchronous, like ``git``; the scheduler calls these in threads, several specs at once, and
``attempt`` holds the drive's ``Bookkeeping`` locks around what must be serial.

Before the agent (README, How a run works):

- ``create_worktree`` makes ``<root>/<run>/<spec>`` on ``dag/<run>/<spec>`` from a start
  commit (the base commit, or for a spec with dependencies the tip of the run's integration
  branch, which holds their merged work: ``dagspec.integration``); ``reopen_worktree`` takes
  up the worktree of an earlier attempt, recreating it from its branch when the directory
  was deleted;
- ``copy_configuration`` copies the untracked autospec configuration (``.autospec/`` without
  ``state/``, ``.claude/``) into it and keeps it out of every commit (see ``_hide``);
- ``spec_dirs.reserve_number`` makes the ``NNN`` that specify will pick distinct from every
  other spec of the run (see its docstring).

After the agent exited 0, ``collect_work`` commits what it left and moves the work back onto
the spec's branch when autospec switched to a branch of its own (v0.7.3, contract §1.5).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from dagspec import (
    compat,
    copies,
    git_batch,
    git_commit,
    git_refs,
    git_worktree,
    spec_dirs,
    worktree_adds,
)
from dagspec.errors import DagspecError, GitError
from dagspec.workspace import own_run_directory, real_path, resolved

COPIED = (".autospec", ".claude")
_HIDE_ALL = "# written by dagspec: copied for autospec, never committed\n*\n"


class WorktreeError(DagspecError):
    """A spec's worktree cannot be made ready, or its work cannot be put on its branch."""


# --- the worktree ---------------------------------------------------------------------------


def create_worktree(
    repo: Path,
    path: Path,
    *,
    branch: str,
    start: str,
    exists: bool | None = None,
    go_on: Callable[[], None] = worktree_adds.nothing,
) -> None:
    """Create the spec's worktree at ``path`` on a new ``branch`` started at ``start``.

    Nothing is merged here: ``start`` already holds whatever the spec depends on (the
    integration branch, ``dagspec.integration``), so no commit is made only to combine
    dependencies. A leftover of a killed creation of the same branch is removed first
    (``_discard_unfinished_creation``). Anything already at ``path`` (a file, a directory
    even empty, a symlink even dangling) is refused, never removed or written through; a
    creation that fails removes only what it made itself. ``exists``: whether ``branch``
    exists, when the caller knows (``Bookkeeping.branches``); else git is asked. The add
    waits for any other run's of the repository (``worktree_adds``; ``go_on`` ends the wait).
    """
    if git_refs.branch_exists(repo, branch) if exists is None else exists:
        _discard_unfinished_creation(repo, path, branch, [start])
    _check_free(path)
    try:
        with worktree_adds.one_at_a_time(repo, go_on):
            _make_run_directory(path.parent)
            git_worktree.add_worktree(repo, path, branch, start)
    except GitError:
        if _holder(repo, branch) != resolved(path) or not (path / ".git").exists():
            _undo_creation(repo, path, branch)
            raise
        # git reported a failure after the checkout was made (a hook, say): it is made
    mark_made(path)


def remove_worktree(repo: Path, path: Path, *, force: bool) -> None:
    """Remove a spec's worktree, and its run's directory ``<root>/<run-id>`` once that is
    empty (``rmdir`` removes nothing else)."""
    git_worktree.remove_worktree(repo, path, force=force)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def _undo_creation(repo: Path, path: Path, branch: str) -> None:
    """Remove what this creation made: the branch (it did not exist before) and the worktree
    registered at ``path`` on it (nothing was there before)."""
    if _holder(repo, branch) == resolved(path):
        git_worktree.remove_worktree(repo, path, force=True)
    if git_refs.branch_exists(repo, branch):
        git_refs.delete_branch(repo, branch, force=True)


def _make_run_directory(directory: Path) -> None:
    """``<root>/<run-id>``, a real directory, or a link back from where it was moved keeping
    its name (``workspace.own_run_directory``): never a symlink that would send the
    worktrees somewhere else."""
    real_path(directory)  # a loop of links on the way is named (mkdir: "File exists")
    _make_directories(directory)
    real = real_path(directory)
    if not own_run_directory(directory, real):
        raise WorktreeError(
            f"{directory} is a symlink to {real}, so the worktrees would be written somewhere "
            f"else: move it away (worktrees moved elsewhere and linked back keep the name "
            f"{directory.name}), or choose another place with --worktree-root"
        )


def _make_directories(directory: Path, tries: int = 10) -> None:
    """``mkdir -p directory``, again when a directory it made on the way was gone before it
    could make the next one in it: another run removing the default root
    ``<repo>.worktrees`` it found empty (``removal.remove_emptied_places``), once its own
    last worktree was gone, in the moment before this run's directory was made in it."""
    for _ in range(tries - 1):
        with contextlib.suppress(FileNotFoundError):
            directory.mkdir(parents=True, exist_ok=True)
            return
    directory.mkdir(parents=True, exist_ok=True)


def _discard_unfinished_creation(repo: Path, path: Path, branch: str, starts: list[str]) -> None:
    """A driver killed while creating this worktree leaves the branch (and the worktree)
    behind before it could record them. That leftover holds nothing of its own, only what
    it was made from (no agent ran there: an agent runs only once the branch is recorded):
    remove it, so the creation can start again. Any other branch of that name is refused."""
    tip = git_refs.rev_parse(repo, f"refs/heads/{branch}")
    if tip is None or git_refs.commits_lacking(repo, tip, starts, merges=False):
        raise WorktreeError(
            f"branch {branch} exists already and holds commits of its own: "
            "rename it (`git branch -m`), or start a new run"
        )
    holder = _holder(repo, branch)
    if holder is not None and holder != resolved(path):
        raise _held_elsewhere(branch, holder)
    if holder is not None:
        git_worktree.remove_worktree(repo, path, force=True)
    git_refs.delete_branch(repo, branch, force=True)


def reopen_worktree(
    repo: Path, path: Path, *, branch: str, go_on: Callable[[], None] = worktree_adds.nothing
) -> None:
    """The worktree of an earlier attempt, recreated from its branch if the directory is gone.

    A deleted branch is an error: the spec's work went with it.
    """
    registered = {resolved(p): b for p, b in git_worktree.worktrees(repo).items()}
    if resolved(path) in registered and path.is_dir():
        if git_worktree.is_registered(path):
            return
        _take_back_empty(path, branch)  # a plain directory there now: never git's or the agent's
    if not git_refs.branch_exists(repo, branch):
        raise WorktreeError(
            f"branch {branch} was deleted, and the spec's work with it: "
            "start a new run (`dag run`) to do this spec again"
        )
    if resolved(path) in registered:  # registered, its directory deleted: forget just it
        git_worktree.remove_worktree(repo, path, force=True)
    _check_free(path)
    _make_run_directory(path.parent)
    holder = _holder(repo, branch)
    if holder is not None and not holder.exists():  # its directory moved or deleted
        git_worktree.remove_worktree(repo, holder, force=True)
    elif holder is not None:
        raise _held_elsewhere(branch, holder)
    with worktree_adds.one_at_a_time(repo, go_on):
        git_worktree.add_worktree_existing(repo, path, branch)
    mark_made(path)


def _take_back_empty(path: Path, branch: str) -> None:
    """Remove the empty directory left at ``path`` where a worktree was (the worktree is then
    recreated from ``branch``); anything else there is refused (``NotAWorktree``): git or an
    agent run in it would act on whatever repository encloses it."""
    if path.is_symlink() or any(path.iterdir()):
        then = f"the spec's worktree is then made again from its branch {branch}"
        raise not_a_worktree(path, then)
    path.rmdir()


def not_a_worktree(path: Path, then: str) -> WorktreeError:
    """The error for a spec's worktree path that holds something other than the worktree
    git registered there (``git_worktree.is_registered``); ``then``: what follows once it
    is moved away."""
    return WorktreeError(
        f"{path} is no longer the worktree git registered there (its .git does not lead "
        f"back to it): dagspec runs neither git nor the agent in it; move it away, {then}"
    )


def git_dir(worktree: Path) -> Path | None:
    """The linked worktree's own git directory, resolved, as its ``.git`` file names it;
    None when it has none (or a ``.git`` directory: then it is no linked worktree)."""
    target = git_worktree.gitfile_target(worktree)
    return resolved(target) if target is not None else None


MADE = "dagspec-made"
"""The file in a worktree's git directory written once its checkout is made: every file
written after it in the worktree was written during the spec's attempts (``made_at``)."""


def mark_made(worktree: Path) -> None:
    """Write ``MADE`` in the worktree's git directory, which goes with the worktree."""
    gitdir = git_dir(worktree)
    if gitdir is not None:
        with contextlib.suppress(OSError):
            (gitdir / MADE).touch()


READY = "dagspec-ready"
"""The file in a worktree's git directory written once ``execution.copy`` and ``setup``
first made it ready: a file they put there keeps its source's modification time but not its
change time, so only a change after this one is the agent's (``ready_at``)."""


def mark_ready(worktree: Path) -> None:
    """Write ``READY`` once, when it is not there (a later attempt's copy skips what exists)."""
    gitdir = git_dir(worktree)
    if gitdir is not None and not (gitdir / READY).exists():
        with contextlib.suppress(OSError):
            (gitdir / READY).touch()


def ready_at(worktree: Path) -> float | None:
    """When ``mark_ready`` marked the worktree, as a timestamp; None when not marked."""
    gitdir = git_dir(worktree)
    try:
        return None if gitdir is None else (gitdir / READY).stat().st_mtime
    except OSError:
        return None


def made_at(worktree: Path) -> float | None:
    """When the worktree's checkout was made (``mark_made``), as a timestamp; None when not
    marked (made by an older dagspec)."""
    gitdir = git_dir(worktree)
    try:
        return None if gitdir is None else (gitdir / MADE).stat().st_mtime
    except OSError:
        return None


def _held_elsewhere(branch: str, holder: Path) -> WorktreeError:
    """The spec's branch checked out in another checkout (a worktree of another run, say):
    git checks a branch out in one place only."""
    return WorktreeError(
        f"branch {branch} is checked out elsewhere, in {holder}: switch that checkout off "
        f"it (`git -C {holder} switch --detach` keeps its files and commits), then retry "
        "the spec"
    )


def _holder(repo: Path, branch: str) -> Path | None:
    """The worktree that has ``branch`` checked out, if any (resolved)."""
    return next((resolved(p) for p, b in git_worktree.worktrees(repo).items() if b == branch), None)


def _check_free(path: Path) -> None:
    """Nothing may be at the worktree path: not a file, not a directory (even empty), not a
    symlink (even dangling). It is not this run's to remove, so the message does not say
    to remove it."""
    if os.path.lexists(path):
        raise WorktreeError(
            f"{path} is already there, where this run's worktree goes: dagspec never writes "
            "into or removes what it did not make; move it away, or use another "
            "--worktree-root"
        )


def unsaved_work(path: Path) -> list[str]:
    """What removing the worktree at ``path`` would lose: ``XY path`` per changed or
    untracked file (``git_worktree.uncommitted``), the configuration dagspec copied in left out (its
    original stays in the repository). Empty when ``path`` is not a directory; refused
    (``not_a_worktree``) when it is a directory but not the worktree git registered. The one rule
    for "safe to remove", for ``dag merge --cleanup``, the end of a run and ``dag cleanup``."""
    if not path.is_dir():
        return []
    if not git_worktree.is_registered(path):  # git would list the enclosing repository's
        raise not_a_worktree(path, "then run this again (a deleted worktree is cleaned up)")
    copied = tuple(f"?? {name}/" for name in COPIED)
    return [entry for entry in git_worktree.uncommitted(path) if not entry.startswith(copied)]


# --- configuration ---------------------------------------------------------------------------


def copy_configuration(repo: Path, worktree: Path) -> list[str]:
    """Copy the untracked autospec configuration into the worktree, never to be committed;
    the special files skipped (``dagspec.copies``: FIFOs, sockets, device nodes), each as
    ``"PATH: KIND"``. Raises ``CopyError`` (one line) when a file cannot be copied.

    Files the checkout already has are left alone. Every copied file is then hidden from
    git by a ``.gitignore`` inside the copied tree (``_hide``), so an agent's ``git add -A``
    cannot commit it. That touches no configuration of the user's repository: a per-worktree
    ``core.excludesFile`` would need ``extensions.worktreeConfig``, which go-git 5.17 and
    later refuse to open, autospec included. A copy that cannot be hidden is removed again.

    git is asked which copies it sees only for a directory the checkout already had: one it
    did not have gets a ``*`` that hides all of it, whatever the user's own ignore rules say
    (the deepest ``.gitignore`` wins), so nothing is left to ask (issue 16).
    """
    existing = _directories(worktree, COPIED)
    skipped: list[str] = []
    for name in COPIED:
        source = _configuration_at(repo, name)
        if source is not None and not (worktree / name).is_symlink():
            ignore = _skip_state(source) if name == ".autospec" else None
            copies.copy_tree(source, worktree / name, skipped=skipped, ignore=ignore)
    fresh = [n for n in COPIED if n not in existing and (worktree / n).is_dir()]
    for name in fresh:
        (worktree / name / ".gitignore").write_text(_HIDE_ALL)
    beside = [name for name in COPIED if name in existing]
    visible = git_worktree.untracked_files(worktree, *beside) if beside else []
    if visible:
        _hide(worktree, visible, existing)
        for leftover in git_worktree.untracked_files(worktree, *beside):
            (worktree / leftover).unlink()
    return skipped


def _configuration_at(repo: Path, name: str) -> Path | None:
    """The directory ``repo/name`` whose files are copied: itself, or the directory a
    symbolic link there leads to (a ``.claude`` kept with the user's dotfiles). None when
    there is none, or when the link leads to the repository or above it (the copy would
    hold the worktree itself)."""
    path = repo / name
    if not path.is_symlink():
        return path if path.is_dir() else None
    target = Path(os.path.realpath(path))
    if not target.is_dir() or Path(os.path.realpath(repo)).is_relative_to(target):
        return None
    return target


def _skip_state(top: Path) -> Callable[[str, list[str]], list[str]]:
    """Leave out ``.autospec/state`` (each spec's autospec state is its own), ``top``
    being where ``.autospec`` leads."""

    def skip(directory: str, names: list[str]) -> list[str]:
        return ["state"] if Path(directory) == top and "state" in names else []

    return skip


def _directories(root: Path, names: Iterable[str]) -> set[str]:
    """Every directory under ``root/<name>``, as a path relative to ``root``."""
    found: set[str] = set()
    for name in names:
        top = root / name
        if top.is_dir():
            found.add(name)
            found.update(p.relative_to(root).as_posix() for p in top.rglob("*") if p.is_dir())
    return found


def _hide(worktree: Path, visible: Sequence[str], existing: set[str]) -> None:
    """Write ``.gitignore`` files that hide ``visible`` (copied, untracked files).

    A file inside a directory the checkout did not have is hidden with that whole directory
    (the topmost new one gets ``*``, which hides its own ``.gitignore`` too); a file beside
    tracked ones is listed by name in a new ``.gitignore`` there. A directory that already has
    a ``.gitignore`` is the user's to manage and is not touched.
    """
    rules: dict[str, list[str]] = {}
    for file in visible:
        path = PurePosixPath(file)
        new = _topmost_new_directory(path, existing)
        if new is not None:
            rules[new] = ["*"]
        else:
            rules.setdefault(str(path.parent), ["/.gitignore"]).append(f"/{path.name}")
    for directory, patterns in rules.items():
        ignore = worktree / directory / ".gitignore"
        if patterns == ["*"]:
            ignore.write_text(_HIDE_ALL)
        elif not ignore.exists():
            ignore.write_text(_HIDE_ALL.replace("*\n", "\n".join(patterns) + "\n"))


def _topmost_new_directory(file: PurePosixPath, existing: set[str]) -> str | None:
    for parent in reversed(file.parents[:-1]):
        if str(parent) not in existing:
            return str(parent)
    return None


def remove_stale_locks(worktree: Path) -> None:
    """Remove the ``index.lock`` a killed agent's git left in the worktree's git directory
    (git refuses every later write while it exists). Call only once no process of the last
    attempt is alive. The git directory is named in the worktree's ``.git`` file."""
    gitdir = git_dir(worktree)
    if gitdir is not None:
        (gitdir / "index.lock").unlink(missing_ok=True)


# --- after the agent ------------------------------------------------------------------------


class Collected(NamedTuple):
    """What ``collect_work`` did: the stray branch it removed, and whether it committed."""

    stray: str | None
    committed: bool  # a commit was made just now (so no other branch can have it yet)


def collect_work(
    repo: Path,
    worktree: Path,
    *,
    branch: str,
    message: str,
    sign: bool | None = None,
    identity: Mapping[str, str] | None = None,
    again: str = "dag retry",
) -> Collected:
    """Put all the agent's work on ``branch`` as commits.

    What the agent left uncommitted is committed as ``message``, on whatever is checked out,
    signed when ``sign`` (None: as the user's configuration says, ``git_commit.signs_commits``),
    by ``identity`` (``git_config.identity_env``). When autospec switched the worktree to a branch
    of its own (v0.7.3 creates ``NNN-name`` during specify, contract §1.5), that branch
    descends from ``branch``: ``branch`` is moved to it and checked out again, and the stray
    branch is deleted. ``again``: the command the refusals end with (the spec's retry).
    Three git processes when the work is on ``branch``
    (``git_batch.head_branch`` reads which branch it is on).
    """
    current = git_batch.head_branch(worktree)
    if current != branch:
        current = git_refs.current_branch(worktree)
    if current not in (branch, None) and not compat.adoptable(worktree, current):
        raise WorktreeError(  # before any commit: nothing of the user's branch is touched
            f"the worktree {worktree} is on the branch {current}, not the spec's {branch}, "
            f"and {current} is not one autospec made: dagspec leaves it as it is; switch the "
            f"worktree back (`git -C {worktree} switch {branch}`), then `{again}`"
        )
    sign = git_commit.signs_commits(repo) if sign is None else sign
    committed = git_commit.commit_all(worktree, message, sign=sign, identity=identity)
    if current == branch:
        return Collected(None, committed)
    head = git_refs.rev_parse(worktree, "HEAD")
    if head is None or not git_refs.is_ancestor(worktree, branch, head):
        raise WorktreeError(
            f"autospec left the work in {worktree} on {current or 'a detached HEAD'}, which "
            f"does not descend from {branch}: move it there by hand, then `{again}`"
        )
    git_worktree.checkout_branch_at(worktree, branch, head)
    if current is not None and spec_dirs.is_numbered(current):
        git_refs.delete_branch(worktree, current)
        return Collected(current, committed)
    return Collected(None, committed)
