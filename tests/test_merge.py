"""Merging a run's completed specs: real git in tmp repositories, runs built by hand."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from dagspec import git as dgit
from dagspec import git_merge, git_refs
from dagspec import state as dstate
from dagspec.dagfile import Dag, load_dag
from dagspec.errors import DagspecError
from dagspec.lifecycle import RunOptions, RunState, RunStatus, SpecState, SpecStatus
from dagspec.merge import merge_run
from dagspec.merge_chain import merge_message
from dagspec.merge_publish import waiting_result
from dagspec.merge_report import (
    MergeReport,
    Outcome,
    SpecMerge,
    merge_exit_code,
    render_report,
)
from dagspec.removal import remove_merged_worktrees, render_cleanup
from dagspec.workspace import RunPaths
from tests.conftest import git

RUN = "r1"
DONE = SpecStatus.COMPLETED
# id -> (dependencies, files its branch writes)
Specs = Mapping[str, tuple[Sequence[str], Mapping[str, str]]]
DIAMOND: Specs = {
    "a": ((), {"a.txt": "a\n"}),
    "b": (("a",), {"b.txt": "b\n"}),
    "c": (("a",), {"c.txt": "c\n"}),
    "d": (("b", "c"), {"d.txt": "d\n"}),
}


def branch(spec_id: str) -> str:
    return f"dag/{RUN}/{spec_id}"


def commit_branch(
    repo: Path, name: str, start: str, deps: Sequence[str], files: Mapping[str, str]
) -> None:
    """A spec's branch as the engine leaves it: from ``start``, dependencies merged in, then
    one commit of the spec's own work."""
    git(repo, "checkout", "-q", "-B", name, start)
    for dep in deps:
        git(repo, "merge", "-q", "--no-ff", "-m", f"Merge {branch(dep)}", branch(dep))
    add_commit(repo, files, f"work of {name}")
    git(repo, "checkout", "-q", "main")


def add_commit(worktree: Path, files: Mapping[str, str], message: str) -> str:
    for name, text in files.items():
        (worktree / name).parent.mkdir(parents=True, exist_ok=True)
        (worktree / name).write_text(text)
    git(worktree, "add", "--", *files)
    git(worktree, "commit", "-q", "-m", message)
    return git(worktree, "rev-parse", "HEAD").strip()


def add_commit_on(repo: Path, name: str, files: Mapping[str, str]) -> None:
    git(repo, "checkout", "-q", name)
    add_commit(repo, files, f"more work of {name}")
    git(repo, "checkout", "-q", "main")


def dag_text(specs: Specs) -> str:
    lines = ["layers:", "  - id: L0", "    features:"]
    for spec_id, (deps, _) in specs.items():
        lines += [f"      - id: {spec_id}", f'        description: "Feature {spec_id}"']
        if deps:
            lines.append(f"        depends_on: [{', '.join(deps)}]")
    return "\n".join(lines) + "\n"


def make_run(
    repo: Path,
    specs: Specs,
    statuses: Mapping[str, SpecStatus] | None = None,
    *,
    branches: bool = True,
) -> RunPaths:
    """Branches ``dag/r1/<id>`` with real commits from main's tip, the DAG copy, and a saved
    state whose specs are completed unless ``statuses`` says otherwise."""
    base = git(repo, "rev-parse", "main").strip()
    for spec_id, (deps, files) in specs.items():
        if branches:
            commit_branch(repo, branch(spec_id), base, deps, files)
    paths = RunPaths(repo, RUN)
    run = RunState(
        format=dstate.FORMAT,
        run_id=RUN,
        dag_file="dag.yaml",
        dag_name="demo",
        repo=str(repo),
        status=RunStatus.COMPLETED,
        base_branch="main",
        base_commit=base,
        started_at=datetime(2026, 11, 24, 10, 15, tzinfo=UTC),
        specs=tuple(
            SpecState(
                id=spec_id,
                layer="L0",
                status=(statuses or {}).get(spec_id, DONE),
                depends_on=tuple(deps),
                branch=branch(spec_id),
            )
            for spec_id, (deps, _) in specs.items()
        ),
    )
    dstate.save(run, paths.state_file)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.dag_copy.write_text(dag_text(specs))
    return paths


def load(paths: RunPaths) -> tuple[RunState, Dag]:
    return dstate.load(paths), load_dag(paths.dag_copy)


def first_parent_subjects(repo: Path, rev: str = "main") -> list[str]:
    return git(repo, "log", "--first-parent", "--format=%s", rev).splitlines()


def tip(repo: Path, rev: str = "main") -> str:
    return git(repo, "rev-parse", rev).strip()


def snapshot(repo: Path) -> tuple[str, str, bytes, str]:
    """Everything of the user's a merge must not touch: refs, HEAD, index bytes, status."""
    return (
        git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        git(repo, "rev-parse", "HEAD"),
        (repo / ".git" / "index").read_bytes(),
        git(repo, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all"),
    )


def outcomes(report: MergeReport) -> dict[str, Outcome]:
    return {s.spec_id: s.outcome for s in report.specs}


# --- clean merges -------------------------------------------------------------------------


@pytest.mark.slow
def test_diamond_merges_in_dependency_order_and_fast_forwards_the_checkout(
    git_repo: Path,
) -> None:
    paths = make_run(git_repo, DIAMOND)
    state, report = merge_run(git_repo, *load(paths))

    assert outcomes(report) == dict.fromkeys("abcd", Outcome.MERGED)
    assert merge_exit_code(report) == 0
    assert first_parent_subjects(git_repo) == [
        "Merge dag/r1/d: d",
        "Merge dag/r1/c: c",
        "Merge dag/r1/b: b",
        "Merge dag/r1/a: a",
        "initial",
    ]
    shas = git(git_repo, "log", "--first-parent", "--format=%H", "-4", "main").split()[::-1]
    for spec_id, sha in zip("abcd", shas, strict=True):
        parents = git(git_repo, "rev-list", "--parents", "-n1", sha).split()[1:]
        assert parents[1] == tip(git_repo, branch(spec_id))  # --no-ff: the branch is parent 2
        body = git(git_repo, "log", "-1", "--format=%B", sha)
        assert (
            body == f"Merge dag/r1/{spec_id}: {spec_id}\n\nFeature {spec_id}\n\ndagspec run r1\n\n"
        )
        assert state.spec(spec_id).merged
        assert state.spec(spec_id).merge_commit == sha
    # The checkout of main was fast-forwarded: files there, nothing half-done.
    assert sorted(p.name for p in git_repo.glob("*.txt")) == ["a.txt", "b.txt", "c.txt", "d.txt"]
    assert git(git_repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert not (git_repo / ".git" / "MERGE_HEAD").exists()
    assert report.checkout == str(git_repo)
    assert (report.old_tip, report.new_tip) == (tip(git_repo, "main~4"), tip(git_repo))
    assert report.base_moved


def test_merge_message_leaves_out_a_missing_description() -> None:
    assert merge_message("r", "x", "dag/r/x", None) == "Merge dag/r/x: x\n\ndagspec run r\n"
    assert merge_message("r", "x", "dag/r/x", " Do X.\n") == (
        "Merge dag/r/x: x\n\nDo X.\n\ndagspec run r\n"
    )


def test_base_not_checked_out_anywhere_moves_only_the_ref(git_repo: Path) -> None:
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    git(git_repo, "checkout", "-q", "--detach")
    head, index = tip(git_repo, "HEAD"), (git_repo / ".git" / "index").read_bytes()

    state, report = merge_run(git_repo, *load(paths))

    assert first_parent_subjects(git_repo)[0] == "Merge dag/r1/a: a"
    assert tip(git_repo, "HEAD") == head
    assert (git_repo / ".git" / "index").read_bytes() == index
    assert not (git_repo / "a.txt").exists()
    assert report.checkout is None and report.base_moved
    assert state.spec("a").merge_commit == tip(git_repo)


@pytest.mark.slow
def test_merges_land_on_a_base_the_user_moved_during_the_run(git_repo: Path) -> None:
    paths = make_run(git_repo, DIAMOND)
    user = add_commit(git_repo, {"user.txt": "mine\n"}, "the user's own commit")

    _, report = merge_run(git_repo, *load(paths))

    assert merge_exit_code(report) == 0
    assert first_parent_subjects(git_repo)[4:] == ["the user's own commit", "initial"]
    assert git_refs.is_ancestor(git_repo, user, tip(git_repo))
    assert (git_repo / "user.txt").read_text() == "mine\n"
    assert report.old_tip == user


# --- conflicts ----------------------------------------------------------------------------

CONFLICTING: Specs = {
    "a": ((), {"f.txt": "from a\n"}),
    "b": ((), {"f.txt": "from b\n", "b.txt": "b\n"}),
    "c": (("b",), {"c.txt": "c\n"}),
    "d": ((), {"d.txt": "d\n"}),
}


@pytest.mark.slow
def test_a_conflict_leaves_that_spec_and_its_dependents_unmerged(git_repo: Path) -> None:
    paths = make_run(git_repo, CONFLICTING)
    state, report = merge_run(git_repo, *load(paths))

    assert outcomes(report) == {
        "a": Outcome.MERGED,
        "b": Outcome.CONFLICT,
        "c": Outcome.BLOCKED,
        "d": Outcome.MERGED,
    }
    by_id = {s.spec_id: s for s in report.specs}
    assert by_id["b"].files == ("f.txt",)
    assert by_id["c"].blocked_by == ("b",)
    assert merge_exit_code(report) == 1
    assert [s.merged for s in state.specs] == [True, False, False, True]
    assert (git_repo / "f.txt").read_text() == "from a\n"
    assert not (git_repo / "b.txt").exists() and not (git_repo / "c.txt").exists()
    assert git(git_repo, "status", "--porcelain") == ""
    assert not (git_repo / ".git" / "MERGE_HEAD").exists()
    text = render_report(report)
    assert "conflict        b  in f.txt" in text
    assert "blocked         c  depends on b, left off" in text
    assert "`git merge dag/r1/b`" in text


def merge_by_hand(repo: Path, name: str, resolved: Mapping[str, str]) -> str:
    """What a user does with a conflicting spec: merge it, resolve, commit."""
    dgit.run(repo, "merge", "-q", "--no-ff", "-m", f"Merge {name} by hand", name, check=False)
    for path, text in resolved.items():
        (repo / path).write_text(text)
    git(repo, "add", "--", *resolved)
    git(repo, "commit", "-q", "--no-edit")
    return tip(repo)


@pytest.mark.slow
def test_resolving_a_conflict_by_hand_lets_the_next_merge_finish(git_repo: Path) -> None:
    paths = make_run(git_repo, CONFLICTING)
    state, _ = merge_run(git_repo, *load(paths))
    dstate.save(state, paths.state_file)
    by_hand = merge_by_hand(git_repo, branch("b"), {"f.txt": "both\n"})

    state, report = merge_run(git_repo, *load(paths))

    assert outcomes(report) == {
        "a": Outcome.ALREADY_MERGED,
        "b": Outcome.ALREADY_MERGED,
        "c": Outcome.MERGED,
        "d": Outcome.ALREADY_MERGED,
    }
    assert state.spec("b").merged and state.spec("b").merge_commit == by_hand
    assert state.spec("c").merged and (git_repo / "c.txt").exists()
    assert merge_exit_code(report) == 0


# --- the user's checkout --------------------------------------------------------------------


@pytest.mark.slow
def test_a_dirty_checkout_is_untouched_and_the_result_waits_on_a_branch(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = make_run(git_repo, DIAMOND)
    (git_repo / "README.md").write_text("my edit\n")
    git(git_repo, "add", "README.md")
    (git_repo / "README.md").write_text("my edit, more\n")
    before = snapshot(git_repo)
    main_before = tip(git_repo)

    assert run_cli("merge", RUN) == 1

    out = capsys.readouterr().out
    assert (git_repo / "README.md").read_text() == "my edit, more\n"
    refs, *rest = snapshot(git_repo)
    assert rest == list(before[1:])
    parked = f"refs/heads/dag/r1/_merged {tip(git_repo, 'dag/r1/_merged')}"
    assert set(refs.splitlines()) == {*before[0].splitlines(), parked}
    assert tip(git_repo) == main_before
    assert first_parent_subjects(git_repo, "dag/r1/_merged")[0] == "Merge dag/r1/d: d"
    assert "main was not moved" in out and "uncommitted changes (README.md)" in out
    assert "git merge --ff-only dag/r1/_merged" in out
    assert not any(s.merged for s in dstate.load(paths).specs)


@pytest.mark.slow
def test_taking_the_waiting_result_by_hand_is_recorded_by_the_next_merge(git_repo: Path) -> None:
    paths = make_run(git_repo, DIAMOND)
    (git_repo / "README.md").write_text("my edit\n")
    _, report = merge_run(git_repo, *load(paths))
    assert report.parked_on == "dag/r1/_merged"
    git(git_repo, "checkout", "--", "README.md")
    git(git_repo, "merge", "-q", "--ff-only", "dag/r1/_merged")

    state, report = merge_run(git_repo, *load(paths))

    assert outcomes(report) == dict.fromkeys("abcd", Outcome.ALREADY_MERGED)
    assert merge_exit_code(report) == 0
    assert state.spec("d").merge_commit == tip(git_repo)
    assert not git_refs.branch_exists(git_repo, "dag/r1/_merged")  # nothing left on it


@pytest.mark.parametrize("take", ["ff-only", "ff-only, then a commit", "squash"])
def test_status_of_a_waiting_result_taken_by_hand_says_to_record_it(
    git_repo: Path, take: str
) -> None:
    """After the user's own ``git merge --ff-only dag/r1/_merged`` (or a squash of it),
    ``dag status`` still said "the result waits on it; nothing keeps main from taking it
    now": it says main has taken it, and that ``dag merge`` records it."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "b": ((), {"b.txt": "b\n"})})
    (git_repo / "README.md").write_text("my edit\n")
    state, report = merge_run(git_repo, *load(paths))
    assert report.parked_on == "dag/r1/_merged"
    git(git_repo, "checkout", "--", "README.md")
    waiting = waiting_result(git_repo, state)
    assert waiting is not None and "nothing keeps main from taking it now" in waiting
    if take == "squash":
        git(git_repo, "merge", "-q", "--squash", "dag/r1/_merged")
        git(git_repo, "commit", "-qm", "squashed")
    else:
        git(git_repo, "merge", "-q", "--ff-only", "dag/r1/_merged")
    if take.endswith("a commit"):
        add_commit(git_repo, {"later.txt": "later\n"}, "later")

    said = waiting_result(git_repo, state)

    assert said is not None and said.startswith(
        "main has taken the result that waited on dag/r1/_merged (a merge of yours, say), "
        "not recorded yet: `"
    ), said
    assert said.endswith(" merge r1` records it")
    state, report = merge_run(git_repo, *load(paths))
    assert all(s.merged for s in state.specs) and merge_exit_code(report) == 0
    assert waiting_result(git_repo, state) is None


def test_merging_again_once_the_checkout_is_clean_drops_the_waiting_branch(
    git_repo: Path,
) -> None:
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    (git_repo / "README.md").write_text("my edit\n")
    _, waiting = merge_run(git_repo, *load(paths))
    git(git_repo, "checkout", "--", "README.md")

    state, report = merge_run(git_repo, *load(paths))

    assert outcomes(report) == {"a": Outcome.MERGED} and report.parked_on is None
    assert state.spec("a").merged
    assert not git_refs.branch_exists(git_repo, "dag/r1/_merged")
    # the merge is built again (its commit differs once a second has passed or the base
    # branch moved), so the waiting result's report showed no commit of it
    parked_commit = waiting.specs[0].commit or ""
    assert parked_commit
    assert "  not merged yet  a\n" in render_report(waiting)
    assert parked_commit[:12] not in render_report(waiting)


@pytest.mark.parametrize(
    ("setup", "named"),
    [
        pytest.param(lambda repo: (repo / "a.txt").write_text("mine\n"), "a.txt", id="untracked"),
        pytest.param(
            lambda repo: (
                (repo / ".git" / "info" / "exclude").write_text("a.txt\n"),
                (repo / "a.txt").write_text("mine\n"),
            ),
            "a.txt",
            id="ignored",
        ),
        pytest.param(lambda repo: (repo / "sub").write_text("mine\n"), "sub", id="file-for-a-dir"),
    ],
)
def test_untracked_files_the_merge_would_overwrite_are_not_clobbered(
    git_repo: Path, setup: Callable[[Path], object], named: str
) -> None:
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n", "sub/x.txt": "x\n"})})
    setup(git_repo)
    before = snapshot(git_repo)

    state, report = merge_run(git_repo, *load(paths))

    assert (git_repo / named).read_text() == "mine\n"
    assert snapshot(git_repo)[1:] == before[1:]
    assert report.parked_on == "dag/r1/_merged"
    assert f"untracked files the merge would overwrite ({named})" in (report.parked_because or "")
    assert merge_exit_code(report) == 1
    assert not state.spec("a").merged


def test_untracked_files_out_of_the_way_do_not_stop_the_fast_forward(git_repo: Path) -> None:
    paths = make_run(git_repo, {"a": ((), {"sub/a.txt": "a\n"})})
    (git_repo / "sub").mkdir()
    (git_repo / "sub" / "notes.txt").write_text("mine\n")

    state, report = merge_run(git_repo, *load(paths))

    assert report.checkout == str(git_repo) and state.spec("a").merged
    assert (git_repo / "sub" / "notes.txt").read_text() == "mine\n"
    assert (git_repo / "sub" / "a.txt").read_text() == "a\n"


# --- races ----------------------------------------------------------------------------------


def user_commit_on_main(repo: Path, message: str) -> str:
    """A commit on main made elsewhere (main is not checked out here)."""
    tree = git(repo, "rev-parse", "main^{tree}").strip()
    sha = git(repo, "commit-tree", tree, "-p", "main", "-m", message).strip()
    git(repo, "update-ref", "refs/heads/main", sha)
    return sha


@pytest.mark.slow
def test_base_moving_before_the_compare_and_swap_rebuilds_the_merges(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = make_run(git_repo, DIAMOND)
    git(git_repo, "checkout", "-q", "--detach")
    real, calls = git_merge.update_ref, []

    def racing(repo: Path, ref: str, new: str, old: str, *, message: str) -> bool:
        if not calls:
            calls.append(user_commit_on_main(repo, "pushed meanwhile"))
        return real(repo, ref, new, old, message=message)

    monkeypatch.setattr(git_merge, "update_ref", racing)
    state, report = merge_run(git_repo, *load(paths))

    assert git_refs.is_ancestor(git_repo, calls[0], tip(git_repo))
    assert first_parent_subjects(git_repo)[4:] == ["pushed meanwhile", "initial"]
    assert report.old_tip == calls[0]
    assert all(s.merged for s in state.specs)


def test_a_commit_in_the_checkout_before_the_fast_forward_is_kept(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    real, calls = git_merge.fast_forward, []

    def racing(worktree: Path, commit: str, **options: Any) -> None:
        if not calls:
            calls.append(add_commit(worktree, {"user.txt": "mine\n"}, "committed meanwhile"))
        real(worktree, commit, **options)

    monkeypatch.setattr(git_merge, "fast_forward", racing)
    state, _ = merge_run(git_repo, *load(paths))

    assert first_parent_subjects(git_repo) == [
        "Merge dag/r1/a: a",
        "committed meanwhile",
        "initial",
    ]
    assert (git_repo / "user.txt").exists() and (git_repo / "a.txt").exists()
    assert git(git_repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert state.spec("a").merged


def test_an_edit_saved_during_a_refused_fast_forward_is_kept(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git refuses (local changes would be overwritten) and writes nothing; the user's edit
    is a start of what the spec wrote, which once looked like a half-written file to undo
    (issue 11): nothing of the checkout is touched."""
    add_commit(git_repo, {"notes.txt": "a\n"}, "notes")
    paths = make_run(git_repo, {"a": ((), {"notes.txt": "a\nb\nc\n"})})
    real = git_merge.fast_forward

    def saving(worktree: Path, commit: str, **options: Any) -> None:
        (worktree / "notes.txt").write_text("a\nb\n")  # the user saves, just then
        real(worktree, commit, **options)

    monkeypatch.setattr(git_merge, "fast_forward", saving)
    state, _ = merge_run(git_repo, *load(paths))
    assert (git_repo / "notes.txt").read_text() == "a\nb\n"
    assert not state.spec("a").merged


def test_a_base_that_keeps_moving_is_left_alone_with_a_clear_error(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    git(git_repo, "checkout", "-q", "--detach")
    real, pushed = git_merge.update_ref, []

    def always_racing(repo: Path, ref: str, new: str, old: str, *, message: str) -> bool:
        pushed.append(user_commit_on_main(repo, f"push {len(pushed)}"))
        return real(repo, ref, new, old, message=message)

    monkeypatch.setattr(git_merge, "update_ref", always_racing)
    with pytest.raises(DagspecError, match="kept moving while merging run r1"):
        merge_run(git_repo, *load(paths))
    assert tip(git_repo) == pushed[-1]
    assert first_parent_subjects(git_repo) == ["push 2", "push 1", "push 0", "initial"]


# --- dry run, idempotence, later completions ------------------------------------------------


@pytest.mark.slow
def test_dry_run_predicts_and_writes_nothing(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = make_run(git_repo, CONFLICTING)
    before, state_bytes = snapshot(git_repo), paths.state_file.read_bytes()

    assert run_cli("merge", RUN, "--dry-run") == 1

    assert snapshot(git_repo) == before
    assert paths.state_file.read_bytes() == state_bytes
    out = capsys.readouterr().out
    assert "would merge     a" in out
    assert "would conflict  b  in f.txt" in out
    assert "blocked         c  depends on b, left off" in out
    assert f"main would move, and {git_repo} be fast-forwarded." in out
    assert out.startswith("Run r1, merging into main (dry run: nothing is written):\n")


@pytest.mark.slow
def test_dry_run_of_clean_merges_exits_0_and_predicts_a_waiting_result(git_repo: Path) -> None:
    paths = make_run(git_repo, DIAMOND)
    _, report = merge_run(git_repo, *load(paths), dry_run=True)
    assert outcomes(report) == dict.fromkeys("abcd", Outcome.WOULD_MERGE)
    assert merge_exit_code(report) == 0 and not report.base_moved

    (git_repo / "README.md").write_text("my edit\n")
    _, report = merge_run(git_repo, *load(paths), dry_run=True)
    assert report.parked_on == "dag/r1/_merged" and merge_exit_code(report) == 1
    assert "The merged result would wait on dag/r1/_merged" in render_report(report)
    assert not git_refs.branch_exists(git_repo, "dag/r1/_merged")


@pytest.mark.slow
def test_merging_again_is_a_no_op(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(git_repo, DIAMOND)
    assert run_cli("merge", RUN) == 0
    main = tip(git_repo)
    capsys.readouterr()

    assert run_cli("merge", RUN) == 0

    assert tip(git_repo) == main
    out = capsys.readouterr().out
    assert out.count("merged before") == 4 and "already merged" not in out  # by its commits
    assert "main did not move: nothing new to merge." in out


@pytest.mark.slow
def test_a_spec_completed_by_a_retry_merges_on_the_next_call(git_repo: Path) -> None:
    specs: Specs = {
        "a": ((), {"a.txt": "a\n"}),
        "b": ((), {"b.txt": "half done\n"}),
        "c": (("b",), {"c.txt": "c\n"}),
    }
    paths = make_run(git_repo, specs, {"b": SpecStatus.FAILED, "c": SpecStatus.BLOCKED})
    state, report = merge_run(git_repo, *load(paths))
    dstate.save(state, paths.state_file)
    assert outcomes(report) == {"a": Outcome.MERGED}
    assert report.not_completed == (("b", "failed"), ("c", "blocked"))
    assert "not completed   b  (failed)" in render_report(report)
    assert merge_exit_code(report) == 0

    # The retry finishes b on its branch, then runs c on a branch with b merged in.
    add_commit_on(git_repo, branch("b"), {"b.txt": "b\n"})
    commit_branch(git_repo, branch("c"), state.base_commit, ("b",), {"c.txt": "c\n"})
    finished = tuple(attrs.evolve(s, status=DONE) for s in state.specs)
    dstate.save(attrs.evolve(state, specs=finished), paths.state_file)

    state, report = merge_run(git_repo, *load(paths))

    assert outcomes(report) == {
        "a": Outcome.ALREADY_MERGED,
        "b": Outcome.MERGED,
        "c": Outcome.MERGED,
    }
    assert all(s.merged for s in state.specs)
    assert first_parent_subjects(git_repo)[:3] == [
        "Merge dag/r1/c: c",
        "Merge dag/r1/b: b",
        "Merge dag/r1/a: a",
    ]


def test_a_missing_branch_is_reported_and_exits_1(git_repo: Path) -> None:
    paths = make_run(git_repo, {"a": ((), {})}, branches=False)
    _, report = merge_run(git_repo, *load(paths))
    assert outcomes(report) == {"a": Outcome.MISSING}
    assert "no branch dag/r1/a" in render_report(report)
    assert merge_exit_code(report) == 1


def test_a_deleted_base_branch_is_a_clear_error(git_repo: Path) -> None:
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    git(git_repo, "checkout", "-q", "-b", "other")
    git(git_repo, "branch", "-q", "-D", "main")
    with pytest.raises(DagspecError, match="base branch main of run r1 no longer exists"):
        merge_run(git_repo, *load(paths))


# --- worktrees of merged specs --------------------------------------------------------------


def add_worktrees(
    repo: Path, paths: RunPaths, spec_ids: Sequence[str], *, under: Path | None = None
) -> dict[str, Path]:
    """A worktree per spec (``wt-<spec>`` beside the repository, else ``under/<spec>``), with
    the run's untracked configuration copied in, recorded in the state."""
    state = dstate.load(paths)
    places = {}
    for spec_id in spec_ids:
        place = repo.parent / f"wt-{spec_id}" if under is None else under / spec_id
        git(repo, "worktree", "add", "-q", str(place), branch(spec_id))
        (place / ".autospec").mkdir()
        (place / ".autospec" / "config.yml").write_text("copied\n")
        state = state.with_spec(attrs.evolve(state.spec(spec_id), worktree=str(place)))
        places[spec_id] = place
    dstate.save(state, paths.state_file)
    return places


@pytest.mark.slow
def test_remove_merged_worktrees_keeps_unmerged_and_changed_ones(git_repo: Path) -> None:
    paths = make_run(git_repo, CONFLICTING)
    places = add_worktrees(git_repo, paths, "abcd")
    (places["d"] / "d.txt").write_text("changed after the run\n")
    state, _ = merge_run(git_repo, *load(paths))

    result = remove_merged_worktrees(git_repo, state)
    cleaned = result.run

    assert not places["a"].exists() and not git_refs.branch_exists(git_repo, branch("a"))
    assert cleaned.spec("a").worktree is None
    for kept in "bcd":
        assert places[kept].exists() and git_refs.branch_exists(git_repo, branch(kept))
        assert cleaned.spec(kept).worktree == str(places[kept])
    assert render_cleanup(state, result).splitlines() == [
        f"removed worktree {places['a']} (a)",
        f"kept worktree {places['d']} (d): it has changes of its own or is in use; look, "
        f"then `git worktree remove --force {places['d']}`",
    ]


def test_a_merged_worktree_kept_in_the_middle_of_a_rebase_is_said_to_be(git_repo: Path) -> None:
    """`dag merge --cleanup` kept a worktree left mid `git rebase -i` saying only "it has
    changes of its own or is in use" (it has none): the operation is named, and how to end
    it, as retry and resume name it."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    places = add_worktrees(git_repo, paths, "a")
    edit = {**os.environ, "GIT_SEQUENCE_EDITOR": "sed -i 1s/^pick/edit/"}
    subprocess.run(["git", "rebase", "-q", "-i", "HEAD~1"], cwd=places["a"], env=edit, check=True)
    state, _ = merge_run(git_repo, *load(paths))

    result = remove_merged_worktrees(git_repo, state)

    assert places["a"].exists() and result.run.spec("a").worktree == str(places["a"])
    assert render_cleanup(state, result).splitlines() == [
        f"kept worktree {places['a']} (a): it is in the middle of a rebase (`git rebase "
        "--continue` or `--abort` there): end it, then `dag cleanup r1` removes it",
    ]


def test_remove_merged_worktrees_forgets_a_worktree_already_gone(git_repo: Path) -> None:
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    places = add_worktrees(git_repo, paths, "a")
    state, _ = merge_run(git_repo, *load(paths))
    git(git_repo, "worktree", "remove", "--force", str(places["a"]))

    cleaned = remove_merged_worktrees(git_repo, state).run

    assert cleaned.spec("a").worktree is None
    assert not git_refs.branch_exists(git_repo, branch("a"))


@pytest.mark.parametrize("named", [False, True])
def test_the_last_merged_worktree_takes_the_directories_dagspec_made(
    git_repo: Path, named: bool
) -> None:
    """The end of ``dag run`` and ``dag merge --cleanup``: ``<root>/<run>`` goes with the
    run's last worktree, and the default root ``<repo>.worktrees`` once empty; a root named
    with --worktree-root is the user's place and stays."""
    root = git_repo.parent / ("mine" if named else f"{git_repo.name}.worktrees")
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    add_worktrees(git_repo, paths, "a", under=root / RUN)
    state, _ = merge_run(git_repo, *load(paths))
    options = RunOptions(worktree_root=str(root) if named else None)

    cleaned = remove_merged_worktrees(git_repo, attrs.evolve(state, options=options)).run

    assert cleaned.spec("a").worktree is None
    assert not (root / RUN).exists()
    assert root.exists() is named


# --- the command ------------------------------------------------------------------------------


@pytest.mark.slow
def test_dag_merge_cleanup_end_to_end(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = make_run(git_repo, DIAMOND)
    places = add_worktrees(git_repo, paths, "abcd")

    assert run_cli("merge", RUN, "--cleanup") == 0

    out = capsys.readouterr().out
    assert out.startswith("Run r1, merging into main:\n  merged          a  ")
    assert "main: " in out and f"; {git_repo} fast-forwarded." in out
    assert all(f"removed worktree {places[s]} ({s})" in out for s in "abcd")
    saved = dstate.load(paths)
    assert all(s.merged and s.worktree is None for s in saved.specs)
    assert git(git_repo, "branch", "--list", "dag/*") == ""


@pytest.mark.slow
def test_taking_a_waiting_result_says_how_to_remove_what_the_merge_left(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """``dag merge`` took the result a dirty checkout left waiting; the worktrees and
    branches stayed (the end of ``dag run`` removes them) and nothing said how to remove
    them. With ``--cleanup`` nothing is left to say."""
    paths = make_run(git_repo, DIAMOND)
    add_worktrees(git_repo, paths, "abcd")
    (git_repo / "README.md").write_text("my edit\n")
    assert run_cli("merge", RUN) == 1
    hint = "hint: the merged specs' worktrees and branches stay: `dag merge r1 --cleanup` "
    assert hint not in capsys.readouterr().out  # nothing merged yet
    git(git_repo, "checkout", "--", "README.md")

    assert run_cli("merge", RUN) == 0

    assert hint + "removes them, as the end of `dag run` does\n" in capsys.readouterr().out
    assert run_cli("merge", RUN, "--cleanup") == 0
    assert "hint:" not in capsys.readouterr().out
    assert all(s.worktree is None for s in dstate.load(paths).specs)


def test_merge_is_refused_while_another_process_drives_the_run(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    main = tip(git_repo)
    with dstate.run_lock(paths):
        assert run_cli("merge", RUN) == 1
    assert "is being driven by process" in capsys.readouterr().err
    assert tip(git_repo) == main


def test_merge_of_an_unknown_run(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("merge", "nope") == 1
    assert "no run 'nope'" in capsys.readouterr().err
    assert not RunPaths(git_repo, "nope").run_dir.exists()


# --- pure parts -----------------------------------------------------------------------------


def report_of(*specs: SpecMerge, **fields: object) -> MergeReport:
    values: dict[str, object] = {
        "run_id": "r",
        "base_branch": "main",
        "dry_run": False,
        "specs": specs,
        "old_tip": "1" * 40,
        "new_tip": "2" * 40,
    }
    values.update(fields)
    return MergeReport(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.MERGED, 0),
        (Outcome.ALREADY_MERGED, 0),
        (Outcome.WOULD_MERGE, 0),
        (Outcome.CONFLICT, 1),
        (Outcome.BLOCKED, 1),
        (Outcome.MISSING, 1),
        (Outcome.WOULD_CONFLICT, 1),
    ],
)
def test_exit_code_per_outcome(outcome: Outcome, code: int) -> None:
    assert merge_exit_code(report_of(SpecMerge("x", "dag/r/x", outcome))) == code


def test_a_waiting_result_exits_1_and_says_how_to_take_it() -> None:
    report = report_of(
        SpecMerge("x", "dag/r/x", Outcome.MERGED, "3" * 40),
        new_tip="1" * 40,
        parked_on="dag/r/_merged",
        parked_because="/repo has uncommitted changes (README.md)",
        checkout=None,
    )
    assert merge_exit_code(report) == 1
    assert render_report(report) == (
        "Run r, merging into main:\n"
        "  not merged yet  x\n"  # no commit: the next `dag merge` builds the merge again
        "main was not moved: /repo has uncommitted changes (README.md); nothing of yours was "
        "touched.\n"
        "The merged result waits on dag/r/_merged. Once the checkout is clean, take it with "
        "`dag merge r` (or `git merge --ff-only dag/r/_merged`, which the next `dag merge` "
        "records).\n"
    )


@pytest.mark.parametrize("lost", ["theirs", "ours"])
def test_a_commit_git_cannot_read_is_a_git_error_naming_the_command(
    git_repo: Path, lost: str
) -> None:
    """``git gc --prune=now`` beside a run pruned a commit: merge-tree exits 1 ("conflicts")
    and prints no tree; the spec failed with a bare ``ValueError: not enough values``."""
    from dagspec import faults
    from dagspec.errors import GitError

    git(git_repo, "checkout", "-q", "-b", "work")
    (git_repo / "w.txt").write_text("work\n")
    git(git_repo, "add", "w.txt")
    git(git_repo, "commit", "-q", "-m", "work")
    commits = {"theirs": git(git_repo, "rev-parse", "work").strip()}
    git(git_repo, "checkout", "-q", "main")
    commits["ours"] = git(git_repo, "commit-tree", "-p", "main", "-m", "x", "main^{tree}").strip()
    gone = commits[lost]
    (git_repo / ".git" / "objects" / gone[:2] / gone[2:]).unlink()
    with pytest.raises(GitError) as info:
        git_merge.merge_tree(git_repo, commits["ours"], commits["theirs"])
    reason = faults.spec_reason(info.value)
    assert reason.startswith(
        f"`git merge-tree --write-tree -z --name-only --no-messages {commits['ours']} "
    )
    assert "failed with exit code 1" in reason and gone in reason  # what git said, naming it
    assert reason.endswith(git_merge.LOST_OBJECTS)


def test_merged_before_by_a_commit_reads_apart_from_already_merged_in_content() -> None:
    """README, Merging: "already merged" is work on the base branch in content only (a
    squash); a spec merged by an earlier merge commit of the run read so too."""
    report = report_of(
        SpecMerge("a", "dag/r/a", Outcome.ALREADY_MERGED, "4" * 40),
        SpecMerge("b", "dag/r/b", Outcome.ALREADY_MERGED),
        new_tip="1" * 40,
    )
    assert render_report(report).splitlines()[1:3] == [
        "  merged before   a  444444444444",
        "  already merged  b",
    ]


@pytest.mark.parametrize("name", ["index.lock", "HEAD.lock", "refs/heads/main.lock"])
def test_a_stale_lock_parks_the_result_naming_the_lock(git_repo: Path, name: str) -> None:
    """A git killed in the user's checkout left ``.git/index.lock``, or while moving the
    branch ``.git/HEAD.lock`` or ``.git/refs/heads/main.lock``: git refuses the
    fast-forward. The result waits, and the message names the lock and what to do about it,
    not "once the checkout is clean" of a checkout that is clean, nor "once what git said is
    put right"; status says the same, not "nothing keeps main from taking it now". The lock
    is not touched (another git may be at work)."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    lock = git_repo / ".git" / name
    lock.write_text("")
    state, report = merge_run(git_repo, *load(paths))
    said = render_report(report)
    assert report.parked_on == "dag/r1/_merged" and not state.spec("a").merged
    assert "Once the checkout is clean" not in said
    assert (
        f"Once no git works in {git_repo} (if none does, delete {lock}: a killed git left "
        "it), take it with `dag merge r1`"
    ) in said, said
    assert lock.exists()
    assert waiting_result(git_repo, state) == (
        "not merged yet: the result waits on dag/r1/_merged, as main was not moved: "
        f"{lock} is there: a git works in {git_repo}, or a killed one left it (delete it)"
    )
    lock.unlink()
    state, report = merge_run(git_repo, *load(paths))
    assert state.spec("a").merged and report.checkout == str(git_repo)


def test_the_merge_table_lists_the_specs_as_the_run_s_report_does(git_repo: Path) -> None:
    """A run that lists a spec before what it depends on, and one not completed between:
    the table listed them in merge order (``a`` before ``z``), the unfinished ones last,
    unlike the run's report printed just above it, which lists them as the run does."""
    specs: Specs = {
        "a": ((), {"a.txt": "a\n"}),
        "m": ((), {"m.txt": "m\n"}),
        "z": (("a",), {"z.txt": "z\n"}),
    }
    paths = make_run(git_repo, specs, {"m": SpecStatus.FAILED})
    recorded = dstate.load(paths)
    dstate.save(attrs.evolve(recorded, specs=recorded.specs[::-1]), paths.state_file)
    _, report = merge_run(git_repo, *load(paths))
    assert [s.spec_id for s in report.specs] == ["a", "z"]  # merged in dependency order
    said = render_report(report)
    assert [line.split()[-2] for line in said.splitlines()[1:4]] == ["z", "m", "a"], said
