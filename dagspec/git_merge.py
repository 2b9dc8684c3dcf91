"""git's merge verbs: merges built as objects only and published by moving a ref.

A merge is made with ``merge-tree --write-tree`` and ``commit-tree`` and published with a
compare-and-swap ``update-ref``, so no index or working tree is ever half-merged (see
:mod:`dagspec.merge`); the verbs for the run's integration branch
(:mod:`dagspec.integration`, :mod:`dagspec.replay`) are here too. Each runs through
:func:`dagspec.git.run`, cleaned and insulated like every git call of dagspec's. Whether
the user's checkout may be fast-forwarded is asked here too (``tracked_changes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from dagspec.errors import GitError, GitOutputError
from dagspec.git import run, run_told
from dagspec.git_commit import commit_tree
from dagspec.git_output import OBJECT_ID, fields, lines, nul_split, status_v2
from dagspec.git_refs import rev_parse


class MergeTree(NamedTuple):
    """The tree a merge of two commits gives, and the files it conflicts in."""

    tree: str
    conflicts: tuple[str, ...]


LOST_OBJECTS = (
    "the repository cannot read a commit the run made (objects pruned by `git gc --prune=now` "
    "during the run, or a damaged disk?): `git fsck` names what is missing"
)


def merge_tree(repo: Path, ours: str, theirs: str) -> MergeTree:
    """Merge two commits into a tree object, touching no index, working tree or ref.

    Raises ``GitError`` when git fails, and when it exits 1 ("conflicts") without a tree:
    a commit it cannot read exits 1 too, printing nothing but its complaint. A tree it
    cannot read (pruned by ``git gc``) git 2.39 takes as empty and exits 0, saying so only
    on stderr ("Could not read <id>"): the merge would delete every file of that side, so
    an object id on stderr (nothing else is printed there with ``--no-messages``, in any
    language) raises too."""
    args = ("merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", ours, theirs)
    try:
        (out, said), code = run_told(repo, *args), 0
    except GitError as exc:
        if exc.returncode != 1:  # 1 means "conflicts"; anything else is a real failure
            raise
        out, code, said = exc.stdout, exc.returncode, exc.stderr
    tree, *files = nul_split(out) or [""]
    if not OBJECT_ID.fullmatch(tree) or OBJECT_ID.search(said):
        raise GitError(["git", *args], code, out, said, hint=LOST_OBJECTS)
    return MergeTree(tree, tuple(files))


def check_readable(repo: Path, new: str, old: str) -> None:
    """Raise ``GitError`` (``LOST_OBJECTS``) unless git can read every commit, tree and blob
    reachable from ``new`` but not from ``old``: what moving a branch from ``old`` to
    ``new`` would publish. One process however many commits (``rev-list --objects``)."""
    args = ("rev-list", "--objects", "--quiet", "--missing=error", new, f"^{old}")
    try:
        run(repo, *args)
    except GitError as exc:
        raise GitError(exc.cmd, exc.returncode, exc.stdout, exc.stderr, hint=LOST_OBJECTS) from None


def update_ref(repo: Path, ref: str, new: str, old: str, *, message: str) -> bool:
    """Compare-and-swap: move ``ref`` from ``old`` to ``new``; False if it is no longer at
    ``old`` (someone moved it), and then nothing changed."""
    try:
        run(repo, "update-ref", "-m", message, ref, new, old)
    except GitError:
        if rev_parse(repo, ref) != old:
            return False
        raise
    return True


def set_branch(repo: Path, branch: str, commit: str) -> None:
    """Create or move ``branch`` to ``commit``; git refuses when it is checked out."""
    run(repo, "branch", "--force", "--no-track", branch, commit)


def fast_forward(worktree: Path, commit: str, *, keep_fds: Sequence[int] = ()) -> None:
    """Fast-forward the branch checked out in ``worktree`` to ``commit``: HEAD, index and
    files together. git refuses, changing nothing, when that is not a fast-forward or
    would overwrite local changes or untracked files. git writes the files and the index
    first and moves the branch last (``builtin/merge.c``: ``checkout_fast_forward``, then
    ``finish``), so a git killed midway leaves the branch where it was: the journal of
    :mod:`dagspec.checkout_move` finishes or undoes it. ``keep_fds``: ``dagspec.git.run``."""
    run(worktree, "merge", "--ff-only", "--no-autostash", "--quiet", commit, keep_fds=keep_fds)


def tree_changes(repo: Path, old: str, new: str) -> list[tuple[str, str]]:
    """``(status letter, path)`` for every file that differs from commit ``old`` to ``new``."""
    args = ("diff-tree", "-r", "-z", "--no-renames", "--name-status", old, new)
    out = run(repo, *args)
    items = fields(args, out)
    pairs = list(zip(items[::2], items[1::2], strict=False))
    for status, _ in pairs:
        if status not in ("A", "D", "M", "T"):
            raise GitOutputError(["git", *args], out, status, "A, D, M or T before each path")
    if len(items) % 2:
        raise GitOutputError(["git", *args], out, items[-1], "a path after it")
    return pairs


def merge_commit_of(repo: Path, commit: str, tip: str, since: str) -> str | None:
    """The commit on ``tip``'s first-parent line after ``since`` that merged ``commit``."""
    args = ("rev-list", "--first-parent", "--parents", tip, f"^{since}")
    for sha, *parents in _commits(args, run(repo, *args)):
        if commit in parents[1:]:
            return sha
    return None


def commits_since(repo: Path, tip: str, since: str) -> set[str]:
    """Every commit ``tip`` has that ``since`` has not, through every parent."""
    return set(lines(run(repo, "rev-list", tip, f"^{since}")))


def first_parent_merges(repo: Path, tip: str, since: str) -> list[tuple[str, str, str]]:
    """``(commit, first parent, second parent)`` of each two-parent commit on ``tip``'s
    first-parent line after ``since``, oldest first."""
    args = ("rev-list", "--reverse", "--first-parent", "--parents", tip, f"^{since}")
    merges = []
    for sha, *parents in _commits(args, run(repo, *args)):
        if len(parents) == 2:
            merges.append((sha, parents[0], parents[1]))
    return merges


def first_parent_subjects(repo: Path, tip: str, since: str) -> list[tuple[list[str], str]]:
    """``(parents, subject)`` of each commit on ``tip``'s first-parent line after ``since``."""
    args = ("log", "--first-parent", "--format=%P%x00%s", tip, f"^{since}", "--")
    out = run(repo, *args)
    found = []
    for line in lines(out):
        parents, nul, subject = line.partition("\0")
        ids = parents.split(" ") if parents else []
        if not nul or not all(OBJECT_ID.fullmatch(object_id) for object_id in ids):
            raise GitOutputError(["git", *args], out, line, "'<parent>...\\0<subject>' lines")
        found.append((ids, subject))
    return found


def _commits(args: tuple[str, ...], out: str) -> list[list[str]]:
    """Each line of ``rev-list --parents`` as ``[commit, parent...]``."""
    found = []
    for line in lines(out):
        ids = line.split(" ")
        if not all(OBJECT_ID.fullmatch(object_id) for object_id in ids):
            raise GitOutputError(["git", *args], out, line, "'<commit> <parent>...' lines")
        found.append(ids)
    return found


def merge_base(repo: Path, one: str, other: str) -> str | None:
    """The best common ancestor of two commits, or None when they have none."""
    out = run(repo, "merge-base", one, other, check=False).strip()
    return out or None


def replay_tree(repo: Path, start: str, onto: str, tip: str) -> MergeTree:
    """What ``onto`` becomes with the changes from ``start`` to ``tip`` applied, as a tree
    (``merge-tree --merge-base``, which git 2.39 lacks: the three trees are merged through
    parentless stand-in commits, so ``start`` is the merge base whatever the history)."""
    base = commit_tree(repo, f"{start}^{{tree}}", (), "replay base")
    ours = commit_tree(repo, f"{onto}^{{tree}}", (base,), "replay onto")
    theirs = commit_tree(repo, f"{tip}^{{tree}}", (base,), "replay work")
    return merge_tree(repo, ours, theirs)


class CheckoutStatus(NamedTuple):
    """What one ``git status`` saw of a checkout: the branch its HEAD names (None when
    detached), the commit HEAD is at (None before the first), and ``XY path`` per staged
    or unstaged change to a tracked file."""

    branch: str | None
    head: str | None
    changes: list[str]


def checkout_status(worktree: Path) -> CheckoutStatus:
    """HEAD and the changes to tracked files of ``worktree``, seen at once; never writes the
    index (``--no-optional-locks``), so asking changes nothing. Edits and untracked files
    inside a submodule are not changes of this checkout (``--ignore-submodules=dirty``): no
    checkout or fast-forward of it touches them (git-submodule(1)); a submodule checked out
    at another commit is one."""
    args = (
        "--no-optional-locks",
        "status",
        "--porcelain=v2",
        "--branch",
        "-z",
        "--untracked-files=no",
        "--ignore-submodules=dirty",
    )
    out = run(worktree, *args)
    headers, changes = status_v2(args, out)
    branch, head = headers.get("branch.head"), headers.get("branch.oid")
    if branch is None or head is None:
        raise GitOutputError(["git", *args], out, out, "# branch.oid and # branch.head")
    return CheckoutStatus(
        None if branch == "(detached)" else branch,
        head if head is not None and OBJECT_ID.fullmatch(head) else None,
        changes,
    )


def tracked_changes(worktree: Path) -> list[str]:
    """``XY path`` per staged or unstaged change to a tracked file (``checkout_status``)."""
    return checkout_status(worktree).changes


def commits_not_applied(
    repo: Path, head: str, tip: str, *, dropped: Sequence[str] = ()
) -> list[str]:
    """``<short sha> <subject>`` of each commit of ``head`` that ``tip`` has neither itself
    nor as a commit making the same change (a replay, a cherry-pick): merge commits left out.
    Equivalence is git's patch id (git-log(1), ``--cherry-pick``), commit by commit, so a
    squash merge is not seen: ``changes_not_on`` sees it. The commits of ``dropped`` (and
    theirs) are left out too: those a rewrite of ``tip`` dropped on purpose."""
    args = ("--format=%h %s", "--no-merges", "--cherry-pick", "--right-only")
    unwanted = [f"^{commit}" for commit in dropped]
    return lines(run(repo, "log", *args, f"{tip}...{head}", *unwanted, "--"))


def changes_not_on(repo: Path, head: str, tip: str, *, dropped: Sequence[str] = ()) -> list[str]:
    """``commits_not_applied``, or none when ``tip`` has every change of ``head`` in one
    piece (``adds_nothing``: a squash merge, or several commits squashed by a rebase)."""
    missing = commits_not_applied(repo, head, tip, dropped=dropped)
    return [] if missing and adds_nothing(repo, tip, head) else missing


def adds_nothing(repo: Path, base: str, branch: str, *, since: str | None = None) -> bool:
    """Whether every change ``branch`` made since its merge base with ``base`` (or since the
    commit ``since``: where a spec replayed onto a rewritten base started) is on ``base``
    already, however it got there (a merge, a squash merge, a rebase, a cherry-pick,
    the same edit by hand): each path ``branch`` changed since the merge base is the same on
    ``base`` now, byte for byte, mode and submodule commit included. Strict on purpose: a path
    changed on ``base`` since (an edit of the user's, a change undone, even elsewhere in the
    same file) counts as not there, so the branch is kept. Judged by comparing trees only,
    never by a merge, which a merge driver, an attribute or a setting of the user's could
    make say anything (``merge=ours``). Two git processes, no pathspec (paths may hold glob
    characters). False when one does not exist or they have no common history: then nothing
    is known to be on ``base``."""
    try:
        changed = changed_paths(repo, *((since, branch) if since else (f"{base}...{branch}",)))
        differ = changed_paths(repo, base, branch)
    except GitOutputError:
        raise
    except GitError:  # one is not a commit, or there is no merge base
        return False
    return not set(changed) & set(differ)


_DIFF_NAMES = (
    # every option that a setting of the user's could otherwise change, said outright
    "diff",
    "--name-only",
    "-z",
    "--no-renames",
    "--no-relative",
    "--no-ext-diff",
    "--no-textconv",
    "--ignore-submodules=none",
)


def changed_paths(repo: Path, *revs: str) -> list[str]:
    """The paths that differ between two commits (``A B``, or ``A...B``: from their merge
    base to ``B``); raises ``GitError`` when git cannot compare them."""
    args = (*_DIFF_NAMES, *revs, "--")
    return fields(args, run(repo, *args))


def tree_of(repo: Path, commit: str) -> str:
    """The tree object of ``commit``."""
    return run(repo, "rev-parse", "--verify", "--quiet", f"{commit}^{{tree}}").strip()
