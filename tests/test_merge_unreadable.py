"""Merging what the repository cannot read: an object of a spec's commit pruned (``git gc
--prune=now`` beside a run) is refused, never merged as if the spec had deleted files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagspec import git_merge
from dagspec.errors import GitError
from dagspec.merge import merge_run
from tests.conftest import git
from tests.test_merge import load, make_run, snapshot, tip


def prune(repo: Path, object_id: str) -> None:
    """What ``git gc --prune=now`` does to an object nothing referenced at that moment."""
    (repo / ".git" / "objects" / object_id[:2] / object_id[2:]).unlink()


def test_a_tree_git_cannot_read_is_refused_not_merged_as_empty(git_repo: Path) -> None:
    """git 2.39's merge-tree takes a tree it cannot read as empty and exits 0: the merge
    deleted every file of the base the spec's side lacked (README.md here), and main and
    the checkout were fast-forwarded to it."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    git(git_repo, "commit", "-q", "--allow-empty", "-m", "the user's")  # the base moved
    prune(git_repo, tip(git_repo, "dag/r1/a^{tree}"))
    before = snapshot(git_repo)

    with pytest.raises(GitError) as info:
        merge_run(git_repo, *load(paths))

    message = str(info.value)
    assert "`git merge-tree --write-tree" in message and "exited 0" in message
    assert message.endswith(git_merge.LOST_OBJECTS)
    assert snapshot(git_repo) == before
    assert (git_repo / "README.md").exists()


def test_a_blob_git_cannot_read_is_refused_before_the_base_moves(git_repo: Path) -> None:
    """A file only the spec added is not read by merge-tree, which merges it by name: main
    moved to a commit whose file git cannot read (every later checkout of it fails)."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    git(git_repo, "checkout", "-q", "--detach")  # main is moved by its ref alone
    prune(git_repo, tip(git_repo, "dag/r1/a:a.txt"))
    before = snapshot(git_repo)

    with pytest.raises(GitError) as info:
        merge_run(git_repo, *load(paths))

    assert str(info.value).startswith("`git rev-list --objects")
    assert str(info.value).endswith(git_merge.LOST_OBJECTS)
    assert snapshot(git_repo) == before


def test_a_join_of_a_tree_git_cannot_read_is_refused(git_repo: Path) -> None:
    """The join of a spec whose tree was pruned right after its commit joined nothing of its
    work and deleted the base's files on the integration branch, which dependents start
    from and the end of the run fast-forwards main to."""
    from dagspec import integration

    make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "b": ((), {"b.txt": "b\n"})})
    base = tip(git_repo)
    integration.join(git_repo, "r1", base, spec_id="a", branch="dag/r1/a", message="join a\n")
    joined = tip(git_repo, "dag/r1/_integration")
    prune(git_repo, tip(git_repo, "dag/r1/b^{tree}"))

    with pytest.raises(GitError) as info:
        integration.join(git_repo, "r1", base, spec_id="b", branch="dag/r1/b", message="b\n")

    assert str(info.value).endswith(git_merge.LOST_OBJECTS)
    assert tip(git_repo, "dag/r1/_integration") == joined
