"""Work the user brought onto the base branch by hand, as one squashed commit or rebased:
``dag merge`` calls it already merged, and ``dag cleanup`` removes it without calling it
lost; work only partly there, or with a commit of its own beyond it, is still kept. Real
git in temporary repositories; runs built as ``test_merge`` builds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import git_merge, git_refs
from dagspec import state as dstate
from dagspec.merge import merge_run
from dagspec.merge_report import Outcome, merge_exit_code
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.test_merge import RUN, Specs, add_commit, branch, load, make_run, tip

Cli = Callable[..., int]
PARKED = f"dag/{RUN}/_merged"
TWO: Specs = {"a": ((), {"a.txt": "a\n"}), "b": (("a",), {"b.txt": "b\n"})}


def park(repo: Path, specs: Specs = TWO) -> RunPaths:
    """A run of ``specs``, its result left on ``_merged`` by a dirty checkout, then the
    checkout made clean again: what a user who takes the result by hand starts from."""
    paths = make_run(repo, specs)
    (repo / "README.md").write_text("my edit\n")
    _, report = merge_run(repo, *load(paths))
    assert report.parked_on == PARKED
    git(repo, "checkout", "--", "README.md")
    return paths


def squash(repo: Path, rev: str, *, leave_out: tuple[str, ...] = ()) -> None:
    """``git merge --squash REV && git commit``, without the files of ``leave_out``."""
    git(repo, "merge", "-q", "--squash", rev)
    for name in leave_out:
        git(repo, "rm", "-q", "--cached", name)
        (repo / name).unlink()
    git(repo, "commit", "-q", "-m", f"squashed {rev}")


def branches(repo: Path) -> list[str]:
    return sorted(git(repo, "branch", "--format=%(refname:short)").split())


# --- the test itself, on two branches ---------------------------------------------------------


def test_a_squash_merged_branch_adds_nothing_though_no_commit_is_on_the_base(
    git_repo: Path,
) -> None:
    git(git_repo, "checkout", "-q", "-b", "work")
    add_commit(git_repo, {"a.txt": "a\n"}, "a")
    add_commit(git_repo, {"a.txt": "a, better\n", "b.txt": "b\n"}, "b")
    git(git_repo, "checkout", "-q", "main")
    squash(git_repo, "work")
    assert len(git_merge.commits_not_applied(git_repo, "work", "main")) == 2
    assert git_merge.adds_nothing(git_repo, "main", "work")
    assert git_merge.changes_not_on(git_repo, "work", "main") == []

    add_commit(git_repo, {"c.txt": "c\n"}, "the user's own, after the squash")
    assert git_merge.changes_not_on(git_repo, "work", "main") == []

    git(git_repo, "checkout", "-q", "work")
    add_commit(git_repo, {"b.txt": "b, more\n"}, "more work after the squash")
    git(git_repo, "checkout", "-q", "main")
    assert not git_merge.adds_nothing(git_repo, "main", "work")
    assert [c.split(" ", 1)[1] for c in git_merge.changes_not_on(git_repo, "work", "main")] == [
        "more work after the squash",
        "b",
        "a",
    ]


def rebase_merge(repo: Path, rev: str) -> None:
    """What a forge's "rebase and merge" does: ``rev``'s commits copied onto the base
    branch, one by one, and ``rev`` left where it was."""
    git(repo, "checkout", "-q", "-b", "copy", rev)
    git(repo, "rebase", "-q", "main")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "copy")
    git(repo, "branch", "-q", "-D", "copy")


A_START = "0\n1\n2\n3\n"
A_WORK = "a\n1\n2\n3\n"  # the branch's change: the first line


def _squashed(repo: Path) -> None:
    squash(repo, "work")


def _partly_squashed(repo: Path) -> None:
    squash(repo, "work", leave_out=("b.txt",))


def _squashed_then_undone(repo: Path) -> None:
    squash(repo, "work")
    add_commit(repo, {"a.txt": A_START}, "a.txt as it was")


def _squashed_then_changed(repo: Path) -> None:
    squash(repo, "work")
    add_commit(repo, {"a.txt": A_WORK.replace("a", "a, changed by me")}, "my a.txt")


def _squashed_then_edited_elsewhere(repo: Path) -> None:
    """The user's own later edit of a file the squash brought, in lines the branch did not
    touch: git would merge the branch cleanly to the base's tree, but which of the file's
    lines are the branch's is not known for sure, so it counts as not applied (kept)."""
    squash(repo, "work")
    add_commit(repo, {"a.txt": A_WORK.replace("3", "3, mine")}, "my line of a.txt")


def _rebase_merged(repo: Path) -> None:
    rebase_merge(repo, "work")


@pytest.mark.parametrize(
    ("bring", "applied"),
    [
        (_squashed, True),
        (_rebase_merged, True),
        (_partly_squashed, False),
        (_squashed_then_undone, False),
        (_squashed_then_changed, False),
        (_squashed_then_edited_elsewhere, False),
    ],
)
def test_only_a_branch_whose_every_change_is_on_the_base_adds_nothing(
    git_repo: Path, bring: Callable[[Path], None], applied: bool
) -> None:
    add_commit(git_repo, {"a.txt": A_START}, "a.txt as it starts")
    git(git_repo, "checkout", "-q", "-b", "work")
    add_commit(git_repo, {"a.txt": A_WORK}, "a")
    add_commit(git_repo, {"b.txt": "b\n"}, "b")
    git(git_repo, "checkout", "-q", "main")
    add_commit(git_repo, {"other.txt": "the base moved\n"}, "other")
    bring(git_repo)
    assert git_merge.adds_nothing(git_repo, "main", "work") is applied
    assert bool(git_merge.changes_not_on(git_repo, "work", "main")) is not applied


def test_branches_without_common_history_or_gone_are_not_judged_applied(git_repo: Path) -> None:
    git(git_repo, "checkout", "-q", "--orphan", "alone")
    git(git_repo, "commit", "-q", "-m", "same files, no common history")
    git(git_repo, "checkout", "-q", "main")
    assert not git_merge.adds_nothing(git_repo, "main", "alone")
    assert not git_merge.adds_nothing(git_repo, "main", "refs/heads/gone")


# --- dag merge ------------------------------------------------------------------------------


@pytest.mark.slow
def test_merge_after_the_user_squash_merged_the_result_says_it_is_on_the_base(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """``git merge --squash dag/<run>/_merged && git commit``: nothing to merge again, no
    ``_merged`` built again, and every spec recorded as merged (with no merge commit), which
    every table then calls "already merged"."""
    paths = park(git_repo)
    squash(git_repo, PARKED)
    squashed = tip(git_repo)
    capsys.readouterr()

    assert run_cli("merge", RUN) == 0

    out = capsys.readouterr().out
    assert out.count("already merged") == 2
    assert "main did not move: nothing new to merge." in out
    assert tip(git_repo) == squashed
    assert PARKED not in branches(git_repo)
    specs = dstate.load(paths).specs
    assert [(s.merged, s.merge_commit) for s in specs] == [(True, None)] * 2
    # one state, one word (README, Merging): the report card said "already on base" and
    # dag status "merged" of what the merge table had just called "already merged"
    run_cli("report", RUN)
    card = capsys.readouterr().out
    assert card.count("  already merged\n") == 2 and ", 2 already merged, " in card, card
    run_cli("status", RUN)
    assert capsys.readouterr().out.count("  already merged\n") == 2


@pytest.mark.slow
def test_merge_after_a_partial_squash_merges_what_is_not_there(git_repo: Path) -> None:
    """b left out of the squash: it is merged, and a is not merged twice."""
    paths = park(git_repo)
    squash(git_repo, PARKED, leave_out=("b.txt",))
    squashed = tip(git_repo)

    state, report = merge_run(git_repo, *load(paths))

    outcomes = {s.spec_id: s.outcome for s in report.specs}
    assert outcomes == {"a": Outcome.ALREADY_MERGED, "b": Outcome.MERGED}
    assert merge_exit_code(report) == 0 and report.parked_on is None
    assert git(git_repo, "log", "--first-parent", "--format=%s", f"{squashed}..main") == (
        f"Merge {branch('b')}: b\n"
    )
    assert (git_repo / "b.txt").read_text() == "b\n"
    assert PARKED not in branches(git_repo)
    assert all(s.merged for s in state.specs)


def test_merge_after_a_squash_and_a_commit_of_the_users_own_on_the_base(git_repo: Path) -> None:
    paths = park(git_repo)
    squash(git_repo, PARKED)
    mine = add_commit(git_repo, {"mine.txt": "mine\n"}, "mine")

    _, report = merge_run(git_repo, *load(paths))

    assert {s.outcome for s in report.specs} == {Outcome.ALREADY_MERGED}
    assert tip(git_repo) == mine and PARKED not in branches(git_repo)


def test_a_waiting_result_with_a_commit_of_its_own_is_never_dropped(git_repo: Path) -> None:
    """Squashed, and then someone committed on ``_merged``: that commit is on no other
    branch, so ``_merged`` stays as it is."""
    paths = park(git_repo)
    squash(git_repo, PARKED)
    git(git_repo, "checkout", "-q", PARKED)
    extra = add_commit(git_repo, {"extra.txt": "extra\n"}, "extra work on the result")
    git(git_repo, "checkout", "-q", "main")

    _, report = merge_run(git_repo, *load(paths))

    assert {s.outcome for s in report.specs} == {Outcome.ALREADY_MERGED}
    assert tip(git_repo, PARKED) == extra


def test_merge_after_one_spec_branch_was_squash_merged(git_repo: Path) -> None:
    paths = make_run(git_repo, TWO)
    squash(git_repo, branch("a"))

    state, report = merge_run(git_repo, *load(paths))

    outcomes = {s.spec_id: s.outcome for s in report.specs}
    assert outcomes == {"a": Outcome.ALREADY_MERGED, "b": Outcome.MERGED}
    assert state.spec("a").merged and state.spec("a").merge_commit is None


def test_merge_cleanup_deletes_the_spec_branches_the_squash_brought_in(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dag merge --cleanup`` deletes a merged spec's branch once the base has it: b's in
    history (merged now), a's in content (squash-merged before; b does not carry it)."""
    park(git_repo, {"a": TWO["a"], "b": ((), TWO["b"][1])})
    squash(git_repo, PARKED, leave_out=("b.txt",))

    assert run_cli("merge", RUN, "--cleanup") == 0

    assert branches(git_repo) == ["main"]


# --- dag cleanup ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec_branches",
    [pytest.param(True, marks=pytest.mark.slow, id="spec-branches"), False],
    ids=[None, "result-only"],
)
def test_cleanup_removes_a_squash_merged_result_as_merged(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], spec_branches: bool
) -> None:
    """``dag cleanup`` right after the squash, no ``dag merge`` between: nothing is kept,
    nothing called lost; without ``--force``."""
    park(git_repo)
    squash(git_repo, PARKED)
    if not spec_branches:
        git(git_repo, "branch", "-q", "-D", *(branch(s) for s in TWO))
    capsys.readouterr()

    assert run_cli("cleanup", RUN) == 0

    out = capsys.readouterr().out
    assert "kept" not in out and "lost" not in out and "not on main" not in out
    assert f"deleted branch {PARKED}" in out
    assert branches(git_repo) == ["main"]


@pytest.mark.parametrize(
    ("bring", "kept"),
    [
        pytest.param(
            lambda repo: squash(repo, PARKED, leave_out=("b.txt",)),
            [PARKED, branch("b")],
            id="partly-squashed",
        ),
        pytest.param(lambda repo: None, [PARKED, *(branch(s) for s in TWO)], id="not-taken"),
    ],
)
def test_cleanup_keeps_what_is_not_all_on_the_base(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    bring: Callable[[Path], None],
    kept: list[str],
) -> None:
    park(git_repo)
    bring(git_repo)
    capsys.readouterr()

    assert run_cli("cleanup", RUN) == 1

    out = capsys.readouterr().out
    assert sorted(line.split()[1].rstrip(":") for line in out.splitlines() if "kept" in line) == (
        sorted(kept)
    )
    assert branches(git_repo) == sorted(["main", *kept])


@pytest.mark.slow
def test_cleanup_keeps_a_squashed_result_with_a_commit_of_its_own(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    park(git_repo)
    squash(git_repo, PARKED)
    git(git_repo, "checkout", "-q", PARKED)
    add_commit(git_repo, {"extra.txt": "extra\n"}, "extra work on the result")
    git(git_repo, "checkout", "-q", "main")
    capsys.readouterr()

    assert run_cli("cleanup", RUN) == 1

    assert f"kept {PARKED}: " in capsys.readouterr().out
    assert branches(git_repo) == [PARKED, "main"]


@pytest.mark.slow
def test_cleanup_after_a_rebase_merge_of_the_result(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forge's "rebase and merge" of ``_merged`` after the base moved: each spec's commit
    copied onto main (merge commits dropped). Git's patch id saw this before; still so."""
    park(git_repo)
    add_commit(git_repo, {"other.txt": "the base moved\n"}, "other")
    rebase_merge(git_repo, PARKED)
    capsys.readouterr()

    assert run_cli("cleanup", RUN) == 0
    assert branches(git_repo) == ["main"]
    assert git_refs.branch_exists(git_repo, "main")
