"""A merge driver, attribute or setting of the user's never makes a spec's work look merged:
whether a branch's changes are on the base branch is judged by comparing trees, never by a
merge (``git_merge.adds_nothing``). With ``shared.txt merge=ours`` and ``merge.ours.driver
true``, git's merge of the spec into the base keeps the base's file and changes nothing;
the spec must be merged all the same, and its branch never deleted as merged. Real git in
temporary repositories; runs built as ``test_merge`` builds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import git_merge
from dagspec import state as dstate
from tests.conftest import git
from tests.test_merge import RUN, add_commit, branch, make_run, tip
from tests.test_squash_merged import squash

Cli = Callable[..., int]
LINES = "".join(f"l{n}\n" for n in range(1, 7))


def keep_ours(repo: Path) -> None:
    """``shared.txt`` (six lines) merged by a driver that keeps the base's side."""
    (repo / "shared.txt").write_text(LINES)
    (repo / ".gitattributes").write_text("shared.txt merge=ours\n")
    git(repo, "add", "shared.txt", ".gitattributes")
    git(repo, "commit", "-q", "-m", "shared")
    git(repo, "config", "merge.ours.driver", "true")


def edit_first_line(repo: Path) -> str:
    """The user's own edit of ``shared.txt`` on main, far from where a spec appends."""
    return add_commit(repo, {"shared.txt": LINES.replace("l1\n", "L1 changed\n")}, "edit")


def test_a_driver_that_keeps_ours_does_not_make_a_branch_add_nothing(git_repo: Path) -> None:
    keep_ours(git_repo)
    git(git_repo, "checkout", "-q", "-b", "work")
    add_commit(git_repo, {"shared.txt": LINES + "work\n"}, "work")
    git(git_repo, "checkout", "-q", "main")
    edit_first_line(git_repo)
    merged = git_merge.merge_tree(git_repo, "main", "work")
    assert merged.tree == git_merge.tree_of(git_repo, "main")  # git's merge drops the work

    assert not git_merge.adds_nothing(git_repo, "main", "work")
    assert git_merge.changes_not_on(git_repo, "work", "main") != []


@pytest.mark.parametrize("name", ["[ab].txt", "*.txt", "-x"])
def test_paths_that_look_like_patterns_or_options_are_judged_as_paths(
    git_repo: Path, name: str
) -> None:
    """A squash of a branch that wrote a file named like a pathspec or an option is on the
    base; an edit of the base to a file that pattern would match changes nothing of that."""
    add_commit(git_repo, {"a.txt": "a\n"}, "a.txt")
    git(git_repo, "checkout", "-q", "-b", "work")
    add_commit(git_repo, {name: "work\n"}, "work")
    git(git_repo, "checkout", "-q", "main")
    squash(git_repo, "work")
    add_commit(git_repo, {"a.txt": "a, mine\n"}, "mine")

    assert git_merge.adds_nothing(git_repo, "main", "work")

    add_commit(git_repo, {name: "changed\n"}, "changed it")
    assert not git_merge.adds_nothing(git_repo, "main", "work")


def test_a_spec_a_driver_would_drop_is_merged_and_its_branch_kept_until_then(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The attack: a spec whose only work is a line appended to ``shared.txt``; ``dag
    merge`` said "already merged", and ``dag cleanup`` deleted ``dag/r1/a``, the only place
    that line was."""
    keep_ours(git_repo)
    paths = make_run(git_repo, {"a": ((), {"shared.txt": LINES + "a's line\n"})})
    work = tip(git_repo, branch("a"))
    edited = edit_first_line(git_repo)
    capsys.readouterr()

    assert run_cli("cleanup", RUN) == 1
    assert f"kept {branch('a')}: 1 commit not on main" in capsys.readouterr().out
    assert tip(git_repo, branch("a")) == work

    assert run_cli("merge", RUN, "--cleanup") == 0

    assert "already merged" not in capsys.readouterr().out
    assert git(git_repo, "rev-parse", "main^1", "main^2").split() == [edited, work]
    assert dstate.load(paths).spec("a").merge_commit == tip(git_repo)
