"""A run whose base branch was rewritten since it began (a leaked commit dropped by ``git
reset --hard``), merged with ``dag merge --onto-current``: no advice dagspec prints brings
the dropped commit back (every branch of the run holds it, so `git merge` of one would),
every advice line names ``--onto-current`` (plain `dag merge` refuses), and a replayed merge
a reset dropped is replayed again, or said lost once pruned. Each test follows the advice
it checks. Real git in temporary repositories; runs built as ``test_integration`` builds
them (a <- b, joined on the integration branch)."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from dagspec import state as dstate
from dagspec.console import dag_command
from dagspec.lifecycle import SpecStatus
from dagspec.workspace import RunPaths
from tests.conftest import ROOT, git, start_dag
from tests.git_gates import CommandGate
from tests.test_checkout_move import BIG, _full_disk_git
from tests.test_integration import joined_run, make_paths
from tests.test_merge import RUN, add_commit, branch, make_run, tip
from tests.test_merge_leftovers import limited_dag
from tests.test_squash_merged import branches

Cli = Callable[..., int]


def rewritten(repo: Path) -> tuple[RunPaths, str]:
    """The run a <- b, completed and joined, then main reset to before its base commit (the
    one leaking a secret): the run and that dropped commit."""
    secret = add_commit(repo, {"secret.txt": "password\n"}, "add the deploy key by mistake")
    joined_run(repo)
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    return make_paths(repo), secret


def on_main(repo: Path, commit: str) -> bool:
    done = subprocess.run(
        ["git", "merge-base", "--is-ancestor", commit, "main"], cwd=repo, check=False
    )
    return done.returncode == 0


def said(capsys: pytest.CaptureFixture[str]) -> str:
    """What was printed, both streams, with ``dag`` as the hints are typed."""
    out = capsys.readouterr()
    return (out.out + out.err).replace(dag_command(), "dag")


def no_git_merge_of_the_run(text: str) -> bool:
    return "`git merge dag/" not in text and "`git merge BRANCH" not in text


def replayed_then_reset(repo: Path, run_cli: Cli, drops: int) -> RunPaths:
    """``rewritten``, replayed with ``--cleanup`` (the branches deleted), then main reset
    ``drops`` merges back."""
    paths, _ = rewritten(repo)
    assert run_cli("merge", RUN, "--onto-current", "--cleanup") == 0
    assert not [b for b in branches(repo) if b.startswith(f"dag/{RUN}/")]
    git(repo, "reset", "-q", "--hard", f"HEAD~{drops}")
    return paths


@pytest.mark.parametrize("drops", [1, 2])
def test_a_replayed_merge_a_reset_dropped_is_replayed_from_the_recorded_merge(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], drops: int
) -> None:
    """Its branch deleted by --cleanup: every `dag merge --onto-current` said "branch
    missing", exit 1, with no way out; the recorded merge commit holds the work."""
    paths = replayed_then_reset(git_repo, run_cli, drops)
    dropped = {s.id: s.merge_commit for s in dstate.load(paths).specs}
    capsys.readouterr()
    assert run_cli("status", RUN) == 1
    out = said(capsys)
    gone = "b" if drops == 1 else "a, b"
    assert f"no longer has the merge of {gone} (reset, or a rebase aborted after the " in out
    assert "`dag merge r1 --onto-current` merges" in out  # plain `dag merge` refuses

    assert run_cli("merge", RUN, "--onto-current") == 0
    out = said(capsys)
    assert "branch missing" not in out and "  merged          b  " in out
    run = dstate.load(paths)
    assert all(s.merged for s in run.specs)
    assert run.spec("b").merge_commit not in (None, dropped["b"])
    files = git(git_repo, "ls-tree", "-r", "--name-only", "main").split()
    assert {"a.txt", "b.txt"} <= set(files) and "secret.txt" not in files
    assert run_cli("status", RUN) == 0
    assert "nothing left to do" in said(capsys)
    assert run_cli("merge", RUN, "--onto-current") == 0  # nothing new
    assert tip(git_repo) == run.spec("b").merge_commit


def test_a_dropped_replayed_merge_pruned_since_is_work_lost(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `git gc --prune=now` the run's base commit is gone too: the merge said "merged
    before" by the pruned commit and status "nothing left to do", exit 0."""
    paths = replayed_then_reset(git_repo, run_cli, 1)
    lost = dstate.load(paths).spec("b").merge_commit
    assert lost is not None
    git(git_repo, "reflog", "expire", "--expire=now", "--all")
    git(git_repo, "gc", "-q", "--prune=now")
    capsys.readouterr()
    assert run_cli("status", RUN) == 1
    out = said(capsys)
    assert "no longer has the merge of b, and the work is no longer in this repository" in out
    assert "`dag merge r1 --onto-current` records it failed; then `dag retry r1 b`" in out

    assert run_cli("merge", RUN, "--onto-current", "--dry-run") == 1
    assert f"  work lost       b  no longer in this repository: {lost[:12]} pruned" in said(capsys)
    assert run_cli("merge", RUN, "--onto-current") == 1
    out = said(capsys)
    assert f"  work lost       b  no longer in this repository: {lost[:12]} pruned" in out
    assert "merged before   b" not in out
    b = dstate.load(paths).spec("b")
    assert b.status is SpecStatus.FAILED and not b.merged
    assert run_cli("status", RUN) == 1
    assert "next: dag retry r1 b\n" in said(capsys)


def test_status_of_a_plain_merge_dropped_and_pruned_says_work_lost(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not rewritten: the note said `dag merge` merges it again; it records it failed."""
    base = tip(git_repo)
    joined_run(git_repo)
    assert run_cli("merge", RUN, "--cleanup") == 0
    git(git_repo, "reset", "-q", "--hard", "HEAD~1")
    git(git_repo, "reflog", "expire", "--expire=now", "--all")
    git(git_repo, "gc", "-q", "--prune=now")
    assert on_main(git_repo, base)
    capsys.readouterr()
    assert run_cli("status", RUN) == 1
    out = said(capsys)
    assert "merges it again" not in out
    assert "b, and the work is no longer in this repository" in out
    assert "`dag merge r1` records it failed; then `dag retry r1 b` does it again" in out


def test_a_commit_on_a_spec_branch_during_a_replay_is_replayed_by_the_next(
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Made after the replay read a's branch, before main moved: the cleanup said its merge
    was dropped and advised `git merge dag/r1/a` (bringing the secret back), and `dag merge
    --onto-current` said "merged before" for ever."""
    paths, secret = rewritten(git_repo)
    git(git_repo, "checkout", "-q", "--detach")  # main moved by `update-ref`, gated
    gate, path = CommandGate(tmp_path / "gate", "update-ref"), os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{gate.path}{os.pathsep}{path}")
    merging = start_dag(git_repo, "merge", RUN, "--onto-current", "--cleanup")
    monkeypatch.setenv("PATH", path)
    gate.wait()
    git(git_repo, "checkout", "-q", branch("a"))
    late = add_commit(git_repo, {"late.txt": "late\n"}, "a commit made during the merge")
    git(git_repo, "checkout", "-q", "--detach")
    assert gate.release()
    out, err = merging.communicate(timeout=60)
    assert merging.returncode == 1, err  # a's new commit is not on main yet
    out = re.sub(r"`\S+ -m dagspec ", "`dag ", out)  # as its own process typed it
    assert (
        f"kept branch {branch('a')}: it moved during the merge (a commit made on it after its "
        "work was merged): `dag merge r1 --onto-current` takes the new commit\n"
    ) in out
    assert no_git_merge_of_the_run(out + err)
    first = dstate.load(paths).spec("a").merge_commit

    capsys.readouterr()
    assert run_cli("merge", RUN, "--onto-current") == 0
    assert "  merged          a  " in said(capsys)
    a = dstate.load(paths).spec("a")
    assert a.merged and a.merge_commit not in (None, first)
    files = git(git_repo, "ls-tree", "-r", "--name-only", "main").split()
    assert "late.txt" in files and "secret.txt" not in files and not on_main(git_repo, secret)
    assert not on_main(git_repo, late)  # replayed, not merged: a's branch holds the secret
    assert run_cli("merge", RUN, "--onto-current", "--cleanup") == 0
    assert "merged before   a" in said(capsys)
    assert branch("a") not in branches(git_repo)


def test_dag_cleanup_of_a_commit_made_after_a_replay_names_onto_current(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    _, secret = rewritten(git_repo)
    assert run_cli("merge", RUN, "--onto-current") == 0
    git(git_repo, "checkout", "-q", branch("b"))
    add_commit(git_repo, {"later.txt": "later\n"}, "a commit made after the merge")
    git(git_repo, "checkout", "-q", "main")
    capsys.readouterr()
    assert run_cli("cleanup", RUN) == 1
    out = said(capsys)
    assert (
        " commits not on main (made after its merge: `dag merge r1 --onto-current` takes it)\n"
    ) in out, out
    assert no_git_merge_of_the_run(out)
    assert out.endswith(
        "after its spec's merge stays even with --force: `dag merge r1 --onto-current` takes it\n"
    )
    assert run_cli("merge", RUN, "--onto-current") == 0
    assert (git_repo / "later.txt").exists() and not on_main(git_repo, secret)
    assert run_cli("cleanup", RUN) == 0
    assert branches(git_repo) == ["main"]


def test_a_conflicting_replay_is_advised_a_rebase_that_then_replays(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The advice was `git merge dag/r1/a`, resolve, commit, then `dag merge r1`: that
    brought the secret back, and `dag merge` accepted it. Followed as it says now, a
    and b land, and the secret does not."""
    paths, secret = rewritten(git_repo)
    add_commit(git_repo, {"a.txt": "the user's a\n"}, "the user's a.txt")
    capsys.readouterr()
    assert run_cli("merge", RUN, "--onto-current") == 1
    out = said(capsys)
    assert "  conflict        a  in a.txt" in out
    assert no_git_merge_of_the_run(out.replace("(`git merge dag/r1/a` would bring", ""))
    since = git(git_repo, "rev-parse", "--short=12", f"{branch('a')}~1").strip()
    rebase = f"git rebase --onto main {since} {branch('a')}"
    assert (
        f"To merge a by hand: `{rebase}` (in a's worktree if it has one, else in a clean "
        "checkout, then `git switch main` once done), resolve, `git rebase --continue`; then "
        "`dag merge r1 --onto-current` replays it and merges what depends on it (`git merge "
        f"{branch('a')}` would bring back the commits dropped from main).\n"
    ) in out
    done = subprocess.run(rebase.split(), cwd=git_repo, capture_output=True, check=False)
    assert done.returncode != 0  # the conflict, to resolve
    (git_repo / "a.txt").write_text("both\n")
    git(git_repo, "add", "a.txt")
    git(git_repo, "-c", "core.editor=true", "rebase", "--continue")
    git(git_repo, "switch", "-q", "main")

    assert run_cli("merge", RUN, "--onto-current") == 0
    out = said(capsys)
    assert "  merged          a  " in out and "  merged          b  " in out
    assert (git_repo / "a.txt").read_text() == "both\n" and (git_repo / "b.txt").exists()
    assert not on_main(git_repo, secret) and not (git_repo / "secret.txt").exists()
    assert all(s.merged for s in dstate.load(paths).specs)


def test_a_result_waiting_for_a_clean_checkout_is_taken_with_onto_current(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The advice said `dag merge r1`, which refuses: main was rewritten."""
    paths, secret = rewritten(git_repo)
    (git_repo / "user.txt").write_text("mine\n")
    git(git_repo, "add", "user.txt")  # uncommitted: main's checkout is not clean
    capsys.readouterr()
    assert run_cli("merge", RUN, "--onto-current") == 1
    out = said(capsys)
    assert "take it with `dag merge r1 --onto-current` (or `git merge --ff-only" in out, out
    git(git_repo, "commit", "-q", "-m", "the user's file")
    assert run_cli("merge", RUN, "--onto-current") == 0
    assert all(s.merged for s in dstate.load(paths).specs) and not on_main(git_repo, secret)


def test_status_of_a_replayed_result_taken_by_hand_names_onto_current(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The result waiting after a replay, taken by the user's `git merge --ff-only` as the
    advice says: `dag status` says main has taken it, and to record it with the command
    that does (plain `dag merge` refuses: main was rewritten)."""
    paths, secret = rewritten(git_repo)
    (git_repo / "README.md").write_text("my edit\n")
    assert run_cli("merge", RUN, "--onto-current") == 1
    git(git_repo, "checkout", "--", "README.md")
    git(git_repo, "merge", "-q", "--ff-only", f"dag/{RUN}/_merged")
    capsys.readouterr()
    assert run_cli("status", RUN) == 1
    out = said(capsys)
    assert (
        "note: main has taken the result that waited on dag/r1/_merged (a merge of yours, "
        "say), not recorded yet: `dag merge r1 --onto-current` records it"
    ) in out, out
    assert run_cli("merge", RUN, "--onto-current") == 0
    assert all(s.merged for s in dstate.load(paths).specs) and not on_main(git_repo, secret)


def test_no_room_for_the_state_after_a_replay_says_to_record_it_with_onto_current(
    git_repo: Path,
) -> None:
    """The state cannot grow (``ulimit -f``) once the replay moved main: the error says so,
    and names the command that records it, which then merges nothing again."""
    paths, secret = rewritten(git_repo)
    limit = len(paths.state_file.read_bytes()) + 16
    done = limited_dag(git_repo, limit, "merge", RUN, "--onto-current")
    moved = tip(git_repo)
    errors = [line for line in done.stderr.splitlines() if line.startswith("dag: error: ")]
    assert done.returncode == 1 and len(errors) == 1, done.stdout + done.stderr
    assert f"main was moved to {moved[:12]}" in errors[0]
    assert errors[0].endswith(" merge r1 --onto-current` records it, merging nothing again")
    again = limited_dag(git_repo, 100_000_000, "merge", RUN, "--onto-current")
    assert again.returncode == 0, again.stdout + again.stderr
    assert tip(git_repo) == moved and not on_main(git_repo, secret)
    assert all(s.merged for s in dstate.load(paths).specs)


def test_the_cleanup_hint_after_a_replay_names_onto_current(
    git_repo: Path, tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said `dag merge r1 --cleanup`, which refuses: main was rewritten."""
    paths, _ = rewritten(git_repo)
    worktree = tmp_path / "wt-a"
    git(git_repo, "worktree", "add", "-q", str(worktree), branch("a"))
    run = dstate.load(paths)
    dstate.save(
        run.with_spec(attrs.evolve(run.spec("a"), worktree=str(worktree))), paths.state_file
    )
    capsys.readouterr()
    assert run_cli("merge", RUN, "--onto-current") == 0
    assert (
        "hint: the merged specs' worktrees and branches stay: `dag merge r1 --onto-current "
        "--cleanup` removes them"
    ) in said(capsys)
    assert run_cli("merge", RUN, "--onto-current", "--cleanup") == 0
    assert not worktree.exists() and dstate.load(paths).spec("a").worktree is None


@pytest.mark.parametrize("forget", [False, True])
def test_a_stale_lock_at_a_replays_cleanup_leaves_no_branch_with_the_dropped_commit(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], forget: bool
) -> None:
    """Once the lock was deleted, `dag cleanup` kept dag/r1/_integration for "1 commit not
    on main": the secret main dropped, which `git merge BRANCH`, as advised, brought back."""
    _, secret = rewritten(git_repo)
    stale = git_repo / ".git" / "packed-refs.lock"
    stale.write_text("")
    assert run_cli("merge", RUN, "--onto-current", "--cleanup") == 1
    stale.unlink()
    capsys.readouterr()
    assert run_cli("cleanup", RUN, *(["--forget"] if forget else [])) == 0
    out = said(capsys)
    assert "kept" not in out and no_git_merge_of_the_run(out), out
    assert branches(git_repo) == ["main"] and not on_main(git_repo, secret)


def test_a_branch_kept_by_the_cleanup_of_a_rewritten_run_is_not_advised_git_merge(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """b failed: its branch has work main lacks, and stays; taking it with `git merge`, as
    the last line said, brings the secret back."""
    paths, _ = rewritten(git_repo)
    run = dstate.load(paths)
    failed = attrs.evolve(run.spec("b"), status=SpecStatus.FAILED)
    dstate.save(run.with_spec(failed), paths.state_file)
    assert run_cli("merge", RUN, "--onto-current") == 0  # a merged; b is not to merge
    capsys.readouterr()
    assert run_cli("cleanup", RUN, "--forget") == 0
    out = said(capsys)
    assert f"kept {branch('b')}: 3 commits not on main" in out, out
    assert no_git_merge_of_the_run(out)
    assert "`dag merge r1 --onto-current` replays a completed spec's work" in out


def test_the_file_size_limit_while_replaying_says_to_replay_again(git_repo: Path) -> None:
    """The line said `dag merge r1` once there is room, which refuses: main was rewritten.
    The replay writes a merged blob (main's edit and a's, in one big file) past the limit."""
    rows = [base64.b64encode(bytes([i % 256]) * 45 + os.urandom(15)).decode() for i in range(2000)]
    add_commit(git_repo, {"big.txt": "\n".join(rows) + "\n"}, "a big file")
    secret = add_commit(git_repo, {"secret.txt": "password\n"}, "add the deploy key by mistake")
    paths = make_run(git_repo, {"a": ((), {"big.txt": "\n".join([*rows[:-1], "a"]) + "\n"})})
    git(git_repo, "reset", "-q", "--hard", "HEAD~1")
    add_commit(git_repo, {"big.txt": "\n".join(["user", *rows[1:]]) + "\n"}, "the user's edit")
    before = tip(git_repo)

    done = limited_dag(git_repo, 20_000, "merge", RUN, "--onto-current")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.endswith(" merge r1 --onto-current` once there is room\n")
    assert tip(git_repo) == before
    again = limited_dag(git_repo, 100_000_000, "merge", RUN, "--onto-current")
    assert again.returncode == 0, again.stderr
    assert dstate.load(paths).spec("a").merged and not on_main(git_repo, secret)


@pytest.mark.slow
def test_the_file_size_limit_during_a_replays_update_says_to_replay_again(
    git_repo: Path, tmp_path: Path
) -> None:
    """git dies of SIGXFSZ writing a's 50 MB file into main's checkout: both lines said
    `dag merge r1` does it again, which refuses: main was rewritten."""
    secret = add_commit(git_repo, {"secret.txt": "password\n"}, "add the deploy key by mistake")
    big = os.urandom(BIG // 2).hex()
    paths = make_run(git_repo, {"a": ((), {"a-big.bin": big})})
    git(git_repo, "reset", "-q", "--hard", "HEAD~1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    limited = {**env, "PATH": f"{_full_disk_git(tmp_path / 'full', killed=True)}:{env['PATH']}"}
    command = [sys.executable, "-m", "dagspec", "merge", RUN, "--onto-current"]
    done = subprocess.run(command, cwd=git_repo, env=limited, capture_output=True, text=True)
    assert done.returncode == 1, done
    said = re.sub(r"`\S+ -m dagspec ", "`dag ", " ".join((done.stdout + done.stderr).split()))
    assert "cut short; `dag merge r1 --onto-current` does it again" in said, said
    assert "once the limit is raised, `dag merge r1 --onto-current` does it again" in said
    assert "`dag merge r1`" not in said
    again = subprocess.run(command, cwd=git_repo, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again
    assert dstate.load(paths).spec("a").merged and not on_main(git_repo, secret)
