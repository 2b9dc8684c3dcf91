"""What git prints, read for real (``dagspec.git_output``): files with spaces, newlines,
quotes, tabs, bytes that are not UTF-8 and names that look like git's own output; branches
with ``/``, quotes, U+2028, U+0085 and bytes that are not UTF-8; a repository at a path with a
newline and a trailing space. Each reader gets every name exactly; output of another shape
(a ``git`` first on PATH adds to what the real one prints) is a ``GitOutputError`` that
names what git printed, never an ``IndexError``, a ``ValueError`` or a misread."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dagspec import git, git_batch, git_checkout, git_merge, git_refs, git_said, git_worktree
from dagspec.errors import GitError, GitOutputError, quoted
from tests.conftest import git as run_git

ODD_FILES = [
    b"with space",
    b"new\nline",
    b'quo"te',
    b"it's",
    b"tab\there",
    b"bad\xffbyte",
    b"?? q",
    b":100644 x",
    b"back\\slash",
    "sep\u2028arator".encode(),
    b"trailing ",
]
ODD_BRANCHES = [
    "a/b/c",
    "quo\"te'x",
    "sep\u2028arator",
    "nel\u0085x",
    "dag/r/a",
    "ünï",
]


def as_read(name: bytes) -> str:
    """``name`` as dagspec reads it from git (``surrogateescape``)."""
    return name.decode("utf-8", "surrogateescape")


def names(raw: list[bytes]) -> set[str]:
    return {as_read(name) for name in raw}


@pytest.fixture
def odd(git_repo: Path) -> tuple[Path, str, str]:
    """``git_repo`` with a commit adding ``ODD_FILES`` and ``ODD_BRANCHES`` at it (and one
    whose name is not UTF-8); the commits before and after."""
    before = run_git(git_repo, "rev-parse", "HEAD").strip()
    for name in ODD_FILES:
        (git_repo / as_read(name)).write_bytes(name)
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-qm", "odd names")
    after = run_git(git_repo, "rev-parse", "HEAD").strip()
    for branch in ODD_BRANCHES:
        run_git(git_repo, "branch", branch)
    run_git(git_repo, "branch", as_read(b"bad\xffname"))
    return git_repo, before, after


def test_file_lists_read_every_odd_name_exactly(odd: tuple[Path, str, str]) -> None:
    repo, before, after = odd
    expected = names(ODD_FILES)
    assert {c.path for c in git_checkout.changes(repo, before, after)} == expected
    assert {c.status for c in git_checkout.changes(repo, before, after)} == {"A"}
    assert set(git_checkout.index_entries(repo)) == expected | {"README.md"}
    assert sorted(git_merge.tree_changes(repo, before, after)) == [
        ("A", p) for p in sorted(expected)
    ]
    assert set(git_worktree.tracked_files(repo, ".")) == expected | {"README.md"}
    modes = git_batch.tree_modes(repo, after, sorted(expected))
    assert modes == dict.fromkeys(expected, "100644")
    assert not git_merge.adds_nothing(repo, before, after)


def test_status_reads_odd_names_and_leaves_out_every_origin(odd: tuple[Path, str, str]) -> None:
    """A rename's origin is a field of its own after it: the origin ``?? q`` was read as an
    untracked file ``q``; a rename in the worktree (`` R``, of a file added with
    ``--intent-to-add``) had its origin read as an entry of its own."""
    repo, _, _ = odd
    run_git(repo, "mv", "?? q", "renamed")
    (repo / "with space").rename(repo / "moved in the worktree")
    run_git(repo, "add", "--intent-to-add", "moved in the worktree")
    (repo / "new\nline").write_text("changed")
    (repo / "un\ntracked 'x'").write_text("new")
    tracked = {" M new\nline", "R  renamed", " R moved in the worktree"}
    assert len(git_worktree.uncommitted(repo)) == 4
    assert set(git_worktree.uncommitted(repo)) == {*tracked, "?? un\ntracked 'x'"}
    assert len(git_merge.tracked_changes(repo)) == 3
    assert set(git_merge.tracked_changes(repo)) == tracked
    assert git_worktree.untracked_files(repo) == ["un\ntracked 'x'"]


def test_ref_lists_read_every_odd_branch_exactly(odd: tuple[Path, str, str]) -> None:
    repo, _, after = odd
    branches = {*ODD_BRANCHES, "main", as_read(b"bad\xffname")}
    tips = git_batch.branch_tips(repo, "refs/heads")
    assert tips == {f"refs/heads/{b}": after for b in branches}
    assert set(git_refs.branch_names(repo)) == branches
    assert set(git_refs.refs(repo, "refs/heads/")) == set(tips)
    assert git_batch.contained_in(repo, after, "refs/heads/dag/") == {"refs/heads/dag/r/a"}
    run_git(repo, "checkout", "-q", "sep\u2028arator")
    assert git_refs.current_branch(repo) == "sep\u2028arator"  # strip() cut the U+2028
    assert git_batch.head_branch(repo) == "sep\u2028arator"


def test_paths_git_prints_keep_a_newline_and_a_trailing_space(tmp_path: Path) -> None:
    repo = tmp_path / "odd\nrepo "
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main")
    run_git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    assert git.repo_root(repo) == repo
    assert git_worktree.git_dir(repo) == repo / ".git"
    assert git_worktree.common_dir(repo) == repo / ".git"
    worktree = tmp_path / "wt "
    run_git(repo, "worktree", "add", "-q", "-b", "w", str(worktree))
    assert git_worktree.git_dir(worktree).parent == repo / ".git" / "worktrees"  # its name: "wt-"
    assert git_batch.head_branch(worktree) == "w"
    assert set(git_worktree.worktrees(repo)) == {repo, worktree}


# --- output of another shape ------------------------------------------------------------------

WRAPPER = """#!/bin/sh
"{real}" "$@"
code=$?
case " $* " in *" $ODD_OUTPUT_FOR "*) printf "$ODD_OUTPUT";; esac
exit $code
"""


@pytest.fixture
def odd_git(
    odd: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str], None]:
    """``odd_git(words, extra)``: from now on, git prints ``extra`` (a printf format) after
    what it printed for a command whose arguments hold ``words``."""
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(WRAPPER.format(real=shutil.which("git")))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")

    def set_output(words: str, extra: str) -> None:
        monkeypatch.setenv("ODD_OUTPUT_FOR", words)
        monkeypatch.setenv("ODD_OUTPUT", extra)

    return set_output


def _calls(repo: Path, before: str, after: str) -> dict[str, Callable[[], Any]]:
    return {
        "changes": lambda: git_checkout.changes(repo, before, after),
        "index_entries": lambda: git_checkout.index_entries(repo),
        "tree_changes": lambda: git_merge.tree_changes(repo, before, after),
        "branch_tips": lambda: git_batch.branch_tips(repo, "refs/heads"),
        "contained_in": lambda: git_batch.contained_in(repo, after, "refs/heads/"),
        "branch_names": lambda: git_refs.branch_names(repo),
        "refs": lambda: git_refs.refs(repo, "refs/heads"),
        "uncommitted": lambda: git_worktree.uncommitted(repo),
        "tracked_changes": lambda: git_merge.tracked_changes(repo),
        "untracked_files": lambda: git_worktree.untracked_files(repo),
        "tracked_files": lambda: git_worktree.tracked_files(repo, "."),
        "tree_modes": lambda: git_batch.tree_modes(repo, after, ["with space"]),
        "tree_dirs": lambda: git_worktree.tree_dirs(repo, after, ""),
        "first_parent_merges": lambda: git_merge.first_parent_merges(repo, after, before),
        "merge_commit_of": lambda: git_merge.merge_commit_of(repo, after, after, before),
        "current_branch": lambda: git_refs.current_branch(repo),
        "repo_root": lambda: git.repo_root(repo),
        "adds_nothing": lambda: git_merge.adds_nothing(repo, before, after),
    }


@pytest.mark.parametrize(
    ("call", "words", "extra", "item"),
    [
        ("changes", "diff-tree", "x", "x"),  # a field without its NUL
        ("changes", "diff-tree", "x\\0", "x"),  # a header without its path
        ("changes", "diff-tree", ":100644 100644 a b M\\0p\\0", ":100644 100644 a b M"),
        ("index_entries", "ls-files", "100644 x\\0", "100644 x"),
        ("tree_changes", "diff-tree", "R100\\0a\\0", "R100"),
        ("tree_changes", "diff-tree", "M\\0", "M"),
        ("branch_tips", "for-each-ref", "no-space\\n", "no-space"),
        ("branch_tips", "for-each-ref", "0123 refs/heads/x\\n", "0123 refs/heads/x"),
        ("contained_in", "for-each-ref", "heads/x\\n", "heads/x"),
        ("branch_names", "for-each-ref", "warning: x\\n", "warning: x"),
        ("refs", "for-each-ref", "refs/heads/a b\\n", "refs/heads/a b"),
        ("uncommitted", "status", "garbage\\0", "garbage"),
        ("tracked_changes", "status", "R  new\\0", "R  new"),  # porcelain v1's
        (
            "tracked_changes",
            "status",
            "2 R. N... 1 1 1 a b R100 new\\0",
            "2 R. N... 1 1 1 a b R100 new",
        ),  # its origin missing
        ("tracked_changes", "status", "1 .M N...\\0", "1 .M N..."),  # no path
        ("untracked_files", "status", "\\0\\0", "\0\0"),
        ("tracked_files", "ls-files", "\\0\\0", "\0\0"),
        ("tree_modes", "ls-tree", "100644 blob\\0", "100644 blob"),
        ("tree_dirs", "ls-tree", "dir", "dir"),
        ("first_parent_merges", "rev-list", "not-a-commit\\n", "not-a-commit"),
        ("merge_commit_of", "rev-list", "x y\\n", "x y"),
        ("current_branch", "symbolic-ref", "second\\n", "main\nsecond"),
        ("repo_root", "rev-parse", "no newline", "no newline"),
        ("adds_nothing", "diff", "\\0\\0", "\0\0"),
    ],
)
def test_output_of_another_shape_names_what_git_printed(
    odd: tuple[Path, str, str],
    odd_git: Callable[[str, str], None],
    call: str,
    words: str,
    extra: str,
    item: str,
) -> None:
    repo, before, after = odd
    odd_git(words, extra)
    with pytest.raises(GitOutputError) as info:
        _calls(repo, before, after)[call]()
    message = str(info.value)
    assert message.startswith("`git ") and f" {words} " in message.split("`")[1] + " "
    assert " printed '" in message and " where dagspec expects " in message
    assert message.endswith(": please report it, with what `git --version` says")
    assert "\n" not in message and info.value.returncode == 0
    assert quoted(item)[1:-1] in message


def test_a_separate_git_directory_ending_in_a_space_is_the_checkout_s(tmp_path: Path) -> None:
    """git 2.39's ``worktree list`` names the git directory of such a checkout; its ``.git``
    file says which checkout it is, the trailing space of the path included."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main", "--separate-git-dir", str(tmp_path / "store "))
    run_git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    assert set(git_worktree.worktrees(repo)) == {repo}


# --- a checkout's .git, read as git reads it -------------------------------------------------


def test_a_checkouts_git_directories_are_read_from_its_files_as_git_reads_them(
    git_repo: Path, tmp_path: Path
) -> None:
    """A linked worktree at a path ending in a space, a main checkout whose git directory
    lies elsewhere (``--separate-git-dir``), a ``.git`` file of other text: the file readers
    agree with ``git rev-parse`` wherever git has an answer."""
    linked = tmp_path / "linked "
    run_git(git_repo, "worktree", "add", "--quiet", "--detach", str(linked))
    own = Path(run_git(linked, "rev-parse", "--absolute-git-dir").rstrip("\n"))
    assert git_worktree.dot_git(linked) == own
    assert git_worktree.own_git_dir(linked) == own
    shared = git_worktree.commondir_of(own)
    assert shared is not None and shared.resolve() == (git_repo / ".git").resolve()
    assert git_worktree.dot_git(git_repo) == git_repo / ".git"
    assert git_worktree.commondir_of(git_repo / ".git") is None

    separate, store = tmp_path / "separate", tmp_path / "store"
    run_git(tmp_path, "init", "--quiet", f"--separate-git-dir={store}", str(separate))
    assert git_worktree.gitfile_target(separate) == store
    (separate / ".git").write_bytes(f"gitdir: {store}\r\n".encode())  # as Windows git writes
    assert git_worktree.gitfile_target(separate) == store

    (separate / ".git").write_text(f"gitdir:{store}\n")  # git needs the space: not a pointer
    assert git_worktree.gitfile_target(separate) is None
    assert git_worktree.dot_git(tmp_path / "nowhere") is None


def test_one_status_says_where_head_is_and_what_changed(odd: tuple[Path, str, str]) -> None:
    """``checkout_status``: the branch HEAD names, its commit and the changes, seen at once
    (a merge asks them together, so that a branch moved meanwhile is seen)."""
    repo, before, after = odd
    (repo / "with space").write_text("changed")
    status = git_merge.checkout_status(repo)
    assert status == ("main", after, [" M with space"])
    run_git(repo, "checkout", "-q", "-f", "--detach", before)
    assert git_merge.checkout_status(repo) == (None, before, [])
    run_git(repo, "checkout", "-q", "--orphan", "new")
    assert git_merge.checkout_status(repo).head is None


def test_what_git_names_under_its_error_is_in_its_gist(git_repo: Path) -> None:
    """git's refusal names the files under its first line ("would be overwritten by
    merge:", then each file indented): the gist, which the merge's report says, named none."""
    run_git(git_repo, "commit", "-q", "--allow-empty", "-m", "first")
    run_git(git_repo, "checkout", "-q", "-b", "x")
    (git_repo / "f.py").write_text("theirs\n")
    run_git(git_repo, "add", "f.py")
    run_git(git_repo, "commit", "-q", "-m", "f")
    run_git(git_repo, "checkout", "-q", "main")
    (git_repo / "f.py").write_text("mine\n")
    with pytest.raises(GitError) as info:
        git_merge.fast_forward(git_repo, "x")
    assert git_said.gist(info.value.stderr or "").endswith("would be overwritten by merge: f.py")


def test_a_git_that_says_a_git_it_started_died_of_a_signal_is_named() -> None:
    """git names a git it started and a signal killed by number ("reset died of signal 25",
    ``git worktree add`` under ``ulimit -f``), and exits 128 + the number: the signal is
    named, and the file size limit is seen as the want of room it is."""
    said = "error: reset died of signal 25\n"
    assert git_said.gist(said) == (
        "error: reset died of signal 25 (SIGXFSZ: the file size limit (ulimit -f) was reached)"
    )
    assert git_said.no_room(153, said) == "the file size limit (ulimit -f) was reached"
    assert (
        git_said.gist("error: reset died of signal 9") == "error: reset died of signal 9 (SIGKILL)"
    )
    assert git_said.no_room(137, "error: reset died of signal 9") is None
