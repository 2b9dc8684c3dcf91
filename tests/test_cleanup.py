"""``dag cleanup``: only the run's own worktrees and branches, and never unsaved work
unless ``--force``, which first says what goes."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import git_refs, git_worktree
from dagspec.lifecycle import RunOptions, RunState, RunStatus, SpecStatus
from dagspec.state import load, run_lock
from dagspec.workspace import RunPaths
from tests.conftest import ROOT, git
from tests.run_states import branch, run, save, spec

Cli = Callable[..., int]


def add_worktree(
    repo: Path, run_id: str, spec_id: str, commit: str | None = None, *, under: Path | None = None
) -> Path:
    """A worktree ``wt-<spec>`` next to the repository (``under/<spec>`` when given, as
    ``<root>/<run>/<spec>``) on ``dag/<run>/<spec>``."""
    path = repo.parent / f"wt-{spec_id}" if under is None else under / spec_id
    git(repo, "worktree", "add", "-q", "-b", branch(run_id, spec_id), str(path), "main")
    if commit is not None:
        (path / f"{spec_id}.txt").write_text(f"{commit}\n")
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", commit)
    return path


def merge(repo: Path, ref: str) -> None:
    git(repo, "merge", "-q", "--no-ff", "-m", f"merge {ref}", ref)


def worktrees(repo: Path) -> list[str]:
    listing = git(repo, "worktree", "list", "--porcelain")
    return sorted(
        line.split(" ", 1)[1] for line in listing.splitlines() if line.startswith("worktree ")
    )


def branches(repo: Path) -> list[str]:
    return sorted(git(repo, "branch", "--format=%(refname:short)").split())


class Setup:
    """Run ``r``: ``a`` merged; ``b`` failed with a commit and uncommitted files; ``c``
    completed with nothing new; ``d`` never started; its merge result branch, merged. Next
    to it: a worktree of run ``other`` and an unrelated one, which cleanup never touches."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.a = add_worktree(repo, "r", "a", commit="a work")
        merge(repo, branch("r", "a"))
        self.b = add_worktree(repo, "r", "b", commit="b work")
        (self.b / "b.txt").write_text("changed\n")
        (self.b / "notes.txt").write_text("mine\n")
        self.c = add_worktree(repo, "r", "c")
        (self.c / ".autospec").mkdir()
        (self.c / ".autospec" / "config.yml").write_text("copied by dagspec\n")
        git(repo, "branch", "dag/r/_merged", "main")
        self.z = add_worktree(repo, "other", "z", commit="z work")
        self.elsewhere = repo.parent / "elsewhere"
        git(repo, "worktree", "add", "-q", "-b", "feature", str(self.elsewhere), "main")
        self.b_commit = git(self.b, "log", "-1", "--format=%h b work").strip()
        self.state = save(
            run(
                repo,
                "r",
                spec("a", SpecStatus.COMPLETED, worktree=str(self.a), merged=True),
                spec("b", SpecStatus.FAILED, worktree=str(self.b)),
                spec("c", SpecStatus.COMPLETED, worktree=str(self.c)),
                spec("d", SpecStatus.BLOCKED),
                status=RunStatus.FAILED,
            )
        )

    def recorded_worktrees(self) -> dict[str, str | None]:
        return {s.id: s.worktree for s in load(self.state).specs}


@pytest.fixture
def setup(git_repo: Path) -> Setup:
    return Setup(git_repo)


@pytest.mark.slow
def test_cleanup_removes_what_is_merged_and_keeps_unsaved_work(
    setup: Setup, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("cleanup", "r") == 1
    captured = capsys.readouterr()
    assert captured.out == (
        f"removed {setup.a}\n"
        f"removed {setup.c}\n"
        "deleted branch dag/r/a\n"
        "deleted branch dag/r/c\n"
        "deleted branch dag/r/_merged\n"
        "kept wt-b: 2 uncommitted files (b.txt, notes.txt)\n"
        f"kept dag/r/b: 1 commit not on main, checked out in {setup.b}\n"
    )
    # What was kept, as what it is, and what to do: keep the work, or lose it.
    assert captured.err == (
        "dag: error: kept 1 worktree and 1 branch of run r, each named above: to keep that "
        "work, leave them (commit a worktree's files there, on its branch); `dag cleanup r "
        "--force` removes the worktrees too, and loses that work\n"
    )
    repo = setup.repo
    assert worktrees(repo) == sorted(str(p) for p in (repo, setup.b, setup.z, setup.elsewhere))
    assert branches(repo) == ["dag/other/z", "dag/r/b", "feature", "main"]
    assert (setup.b / "notes.txt").read_text() == "mine\n"
    assert setup.recorded_worktrees() == {"a": None, "b": str(setup.b), "c": None, "d": None}


def test_readme_s_first_steps_say_that_cleanup_keeps_a_failed_spec_s_work() -> None:
    """What the two tests around this one show, said where a newcomer reads first (README,
    "Stop, look, resume, clean up"), not only in the reference further down."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("**Stop, look, resume, clean up**", 1)[1].split("\n**", 1)[0]
    said = " ".join(section.split())
    assert (
        "After a failed spec, `dag cleanup <run-id>` keeps that spec's worktree and its "
        "uncommitted files (the agent's unfinished work), names them and exits 1; "
        "`dag cleanup <run-id> --force` removes them too, after listing what will be lost."
    ) in said


@pytest.mark.slow
def test_force_says_what_is_lost_then_removes_it_but_never_a_branch_main_lacks(
    setup: Setup, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """--force is for uncommitted files: dag/r/b's commit, on no other ref, stays."""
    assert run_cli("cleanup", "r", "--force") == 1
    captured = capsys.readouterr()
    assert captured.out == (
        "--force: this work will be lost:\n"
        "  wt-b: 2 uncommitted files\n"
        "     M b.txt\n"
        "    ?? notes.txt\n"
        f"removed {setup.a}\n"
        f"removed {setup.b}\n"
        f"removed {setup.c}\n"
        "deleted branch dag/r/a\n"
        "deleted branch dag/r/c\n"
        "deleted branch dag/r/_merged\n"
        "kept dag/r/b: 1 commit not on main\n"
    )
    assert captured.err == (
        "dag: error: kept 1 branch of run r, each named above: a branch kept for its commits "
        "stays even with --force: `git merge BRANCH` takes one's work, `git branch -D BRANCH` "
        "drops it\n"
    )
    repo = setup.repo
    assert worktrees(repo) == sorted(str(p) for p in (repo, setup.z, setup.elsewhere))
    assert branches(repo) == ["dag/other/z", "dag/r/b", "feature", "main"]
    assert not setup.b.exists()
    assert set(setup.recorded_worktrees().values()) == {None}
    git(repo, "branch", "-D", "dag/r/b")  # the user drops it, as the error says
    assert run_cli("cleanup", "r") == 0
    assert capsys.readouterr().out == "nothing to clean up for run r\n"


def test_force_lists_the_first_fifty_files_then_how_many_more(
    setup: Setup, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """60,000 untracked files were 60,000 lines before the removal."""
    many = setup.b / "many"
    many.mkdir()
    for n in range(120):
        (many / f"f{n:03d}.txt").write_text("x\n")
    assert run_cli("cleanup", "r", "--force") == 1
    out = capsys.readouterr().out
    listed = out.split("removed ", 1)[0].splitlines()
    assert listed[:2] == ["--force: this work will be lost:", "  wt-b: 122 uncommitted files"]
    assert len(listed) == 2 + 50 + 1
    assert listed[-1] == "    and 72 more"
    assert not setup.b.exists()


def test_an_unmerged_branch_without_worktree_is_kept(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    path = add_worktree(git_repo, "r", "a", commit="one")
    (path / "a.txt").write_text("two\n")
    git(path, "commit", "-qam", "two")
    git(git_repo, "worktree", "remove", str(path))
    git(git_repo, "branch", "dag/r/_merged", branch("r", "a"))
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED)))
    assert run_cli("cleanup", "r") == 1
    assert capsys.readouterr().out == (
        "kept dag/r/a: 2 commits not on main\nkept dag/r/_merged: 2 commits not on main\n"
    )
    assert branches(git_repo) == ["dag/r/_merged", "dag/r/a", "main"]


def test_what_is_at_a_recorded_path_but_not_the_run_s_is_left_alone(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """``wt-<spec>`` does not name the run: another run may have it now."""
    theirs = add_worktree(git_repo, "other", "x", commit="theirs")
    plain = git_repo.parent / "plain"
    plain.mkdir()
    gone = git_repo.parent / "gone"
    paths = save(
        run(
            git_repo,
            "r",
            spec("x", SpecStatus.FAILED, worktree=str(theirs)),
            spec("y", SpecStatus.FAILED, worktree=str(plain)),
            spec("z", SpecStatus.FAILED, worktree=str(gone)),
            spec("main", SpecStatus.FAILED, worktree=str(git_repo)),
        )
    )
    assert run_cli("cleanup", "r") == 0
    assert capsys.readouterr().out == (
        f"left {theirs} alone: it is not this run's worktree\n"
        f"left {plain} alone: it is not this run's worktree\n"
        f"left {git_repo} alone: it is not this run's worktree\n"
    )
    assert worktrees(git_repo) == sorted([str(git_repo), str(theirs)])
    assert plain.is_dir()
    assert {s.worktree for s in load(paths).specs} == {None}


def test_a_worktree_deleted_by_hand_is_pruned(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    path = add_worktree(git_repo, "r", "a")
    shutil.rmtree(path)
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED, worktree=str(path))))
    assert run_cli("cleanup", "r") == 0
    assert capsys.readouterr().out == f"removed {path}\ndeleted branch dag/r/a\n"
    assert worktrees(git_repo) == [str(git_repo)]


def test_a_worktree_autospec_switched_to_its_own_branch_is_still_the_runs(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """v0.7.3's specify checks out ``NNN-name`` in the worktree: cleanup knows it by its
    recorded path; the stray branch goes when its commits are on the spec's branch."""
    path = add_worktree(git_repo, "r", "a")
    git(path, "checkout", "-q", "-b", "001-thing")
    save(run(git_repo, "r", spec("a", SpecStatus.FAILED, worktree=str(path))))
    (path / "notes.txt").write_text("unsaved\n")
    assert run_cli("cleanup", "r") == 1
    assert "kept" in capsys.readouterr().out
    assert path.is_dir()
    assert run_cli("cleanup", "r", "--force") == 0
    assert worktrees(git_repo) == [str(git_repo)]
    assert "001-thing" not in branches(git_repo)


def driven(repo: Path) -> RunState:
    return run(repo, "r", spec("a", SpecStatus.RUNNING, worktree=str(repo.parent / "wt-a")),
               status=RunStatus.RUNNING)  # fmt: skip


def test_cleanup_refuses_while_the_run_is_driven(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    add_worktree(git_repo, "r", "a")
    paths = save(driven(git_repo))
    before = paths.state_file.read_bytes()
    assert run_cli("cleanup", "r", "--force") == 1
    assert capsys.readouterr().err == (
        f"dag: error: run 'r' is being driven by process {os.getpid()}: wait for it to "
        "finish, or stop it, then run `dag cleanup r` again\n"
    )
    assert paths.state_file.read_bytes() == before
    assert len(worktrees(git_repo)) == 2


def test_cleanup_refuses_while_another_process_holds_the_lock(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    add_worktree(git_repo, "r", "a")
    paths = save(
        run(git_repo, "r", spec("a", SpecStatus.FAILED, worktree=str(git_repo.parent / "wt-a")))
    )
    with run_lock(paths):  # a second open file description: flock refuses it too
        assert run_cli("cleanup", "r", "--force") == 1
    assert "is being driven by process" in capsys.readouterr().err
    assert len(worktrees(git_repo)) == 2


def test_cleanup_of_a_run_whose_driver_died_goes_ahead(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    path = add_worktree(git_repo, "r", "a")
    paths = save(run(git_repo, "r", spec("a", SpecStatus.RUNNING, worktree=str(path)),
                     status=RunStatus.RUNNING, driver_pid=-1))  # fmt: skip
    assert run_cli("cleanup", "r") == 0
    assert capsys.readouterr().out == f"removed {path}\ndeleted branch dag/r/a\n"
    # saved as its readers and resume see it (settled), so that it ends when last seen alive
    left = load(paths)
    assert (left.status, left.spec("a").status) == (RunStatus.INTERRUPTED, SpecStatus.INTERRUPTED)
    assert left.finished_at is not None and left.spec("a").worktree is None


def test_a_damaged_state_file_is_not_touched(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    path = RunPaths(git_repo, "r").state_file
    path.parent.mkdir(parents=True)
    path.write_bytes(b"format: 7\n")
    assert run_cli("cleanup", "r", "--force") == 1
    assert capsys.readouterr().err.startswith(f"dag: error: {path} was written by a newer")
    assert path.read_bytes() == b"format: 7\n"


def test_a_worktree_git_refuses_to_remove_is_reported(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    path = add_worktree(git_repo, "r", "a")
    git(git_repo, "worktree", "lock", "--reason", "on a USB stick", str(path))
    paths = save(run(git_repo, "r", spec("a", SpecStatus.FAILED, worktree=str(path))))
    assert run_cli("cleanup", "r", "--force") == 1
    captured = capsys.readouterr()
    worktree_line, branch_line = captured.out.splitlines()  # git's words vary by version
    assert worktree_line.startswith("kept wt-a: git could not remove it: ")
    assert "locked" in worktree_line
    assert branch_line == f"kept dag/r/a: the branch of the worktree {path}, which stays"
    assert (
        captured.err
        == "dag: error: kept 1 worktree and 1 branch of run r, each named above with why\n"
    )
    assert load(paths).spec("a").worktree == str(path)


def test_uncommitted_lists_each_change_once(git_repo: Path) -> None:
    git(git_repo, "mv", "README.md", "READ ME.md")
    (git_repo / "new dir").mkdir()
    (git_repo / "new dir" / "x.txt").write_text("x\n")
    (git_repo / ".gitignore").write_text("*.log\n")
    (git_repo / "ignored.log").write_text("noise\n")
    assert git_worktree.uncommitted(git_repo) == [
        "R  READ ME.md",
        "?? .gitignore",
        "?? new dir/x.txt",
    ]
    head = git(git_repo, "rev-parse", "--short", "HEAD").strip()
    git(git_repo, "commit", "-qam", "rename")
    assert git_refs.commits_lacking(git_repo, "main", [head]) == [
        git(git_repo, "log", "-1", "--format=%h rename").strip()
    ]


@pytest.mark.slow
@pytest.mark.parametrize("kept", [False, True])
def test_worktrees_moved_and_linked_back_leave_nothing_of_the_run(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, kept: bool
) -> None:
    """Its emptied directory on the other disk was removed, and the link to it left behind;
    the link goes once its target went, and stays while something of the run is kept."""
    root = git_repo.parent / f"{git_repo.name}.worktrees"
    made = []
    for spec_id in ("a", "b"):
        path = root / "r" / spec_id
        git(git_repo, "worktree", "add", "-q", "-b", branch("r", spec_id), str(path), "main")
        made.append(spec(spec_id, SpecStatus.FAILED, worktree=str(path)))
    save(run(git_repo, "r", *made, status=RunStatus.FAILED))
    disk = tmp_path / "disk"
    disk.mkdir()
    (root / "r").rename(disk / "r")
    (root / "r").symlink_to(disk / "r")
    if kept:
        (disk / "r" / "b" / "notes.txt").write_text("mine\n")  # unsaved: kept without --force
    assert run_cli("cleanup", "r") == (1 if kept else 0)
    out = capsys.readouterr().out
    assert os.path.lexists(root / "r") is kept
    assert (disk / "r").exists() is kept
    assert disk.is_dir()  # the user's
    assert root.exists() is kept  # dagspec's default root: it goes once empty
    assert (f"removed {root / 'r'} (the link to {disk / 'r'})" in out) is not kept
    assert worktrees(git_repo) == sorted(
        [str(git_repo), *([str(root / "r" / "b")] if kept else [])]
    )


@pytest.mark.parametrize("root_is", ["dagspec's", "shared", "named", "linked"])
def test_the_last_worktree_takes_the_directories_dagspec_made(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, root_is: str
) -> None:
    """``<root>/<run>`` goes with the run's last worktree, and the default root
    ``<repo>.worktrees`` once empty, since dagspec made both; a root that holds another run's
    worktree, one named with --worktree-root (the user's place, maybe there before any run)
    and a default root that is the user's link to another disk stay."""
    default = git_repo.parent / f"{git_repo.name}.worktrees"
    root = tmp_path / "mine" if root_is == "named" else default
    if root_is == "linked":
        (tmp_path / "disk").mkdir()
        default.symlink_to(tmp_path / "disk")
    path = add_worktree(git_repo, "r", "a", under=root / "r")
    if root_is == "shared":
        add_worktree(git_repo, "other", "z", under=root / "other")
    options = RunOptions(worktree_root=str(root) if root_is == "named" else None)
    a = spec("a", SpecStatus.FAILED, worktree=str(path))
    save(run(git_repo, "r", a, status=RunStatus.FAILED, options=options))
    assert run_cli("cleanup", "r") == 0
    removed = os.path.realpath(path)  # named where it is: through the link, on the disk
    assert capsys.readouterr().out == f"removed {removed}\ndeleted branch dag/r/a\n"
    assert not os.path.lexists(root / "r")
    assert os.path.lexists(root) is (root_is != "dagspec's")
    assert (tmp_path / "disk").is_dir() is (root_is == "linked")


def test_a_kept_worktree_names_its_first_files_and_the_error_says_what_was_kept(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed run's worktrees, kept for their uncommitted files: each line names the
    first three, the error counts worktrees as worktrees and says what to do."""
    specs = []
    for spec_id in ("a", "b"):
        path = add_worktree(git_repo, "r", spec_id)
        for name in ("e.txt", "d.txt", "c.txt", "b.txt", "a.txt"):
            (path / name).write_text("mine\n")
        specs.append(spec(spec_id, SpecStatus.FAILED, worktree=str(path)))
    save(run(git_repo, "r", *specs, status=RunStatus.FAILED))
    assert run_cli("cleanup", "r") == 1
    captured = capsys.readouterr()
    assert "kept wt-a: 5 uncommitted files (a.txt, b.txt, c.txt and 2 more)\n" in captured.out
    assert captured.err.startswith(
        "dag: error: kept 2 worktrees and 2 branches of run r, each named above: "
    )
    assert captured.err.endswith(
        "`dag cleanup r --force` removes the worktrees too, and loses that work\n"
    )


@pytest.mark.slow  # several dag commands
def test_a_worktree_in_the_middle_of_a_rebase_is_kept_with_the_commit_it_made(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A merged spec's worktree mid `git rebase -i`, its commit amended there (on no branch
    yet, HEAD detached): `dag cleanup` removed the worktree, and with it the only way to
    that commit. It is kept, naming the rebase, unless --force, which says what goes."""
    path = add_worktree(git_repo, "r", "a", commit="a work")
    merge(git_repo, branch("r", "a"))
    edit = {**os.environ, "GIT_SEQUENCE_EDITOR": "sed -i 1s/^pick/edit/"}
    subprocess.run(["git", "rebase", "-q", "-i", "HEAD~1"], cwd=path, env=edit, check=True)
    (path / "precious.txt").write_text("mine\n")
    git(path, "add", "precious.txt")
    git(path, "commit", "-q", "--amend", "-m", "a work, amended")
    amended = git(path, "rev-parse", "HEAD").strip()
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED, worktree=str(path), merged=True)))
    rebase = "a rebase (`git rebase --continue` or `--abort` there)"

    amended_line = f"1 commit on no branch ({amended[:7]} a work, amended)"
    rescue = f"which `git -C {path} branch NAME HEAD` would keep"
    kept = f"kept wt-a: it is in the middle of {rebase}: end it, then `dag cleanup r`; "
    assert run_cli("cleanup", "r") == 1
    captured = capsys.readouterr()
    assert f"{kept}it holds {amended_line}, {rescue}\n" in captured.out, captured.out
    assert f"kept dag/r/a: checked out in {path}\n" in captured.out  # git would refuse
    # --force keeps its commit (2fdc2f9): the advice no longer says it loses that work
    assert captured.err == (
        "dag: error: kept 1 worktree and 1 branch of run r, each named above: a worktree "
        "holding commits on no branch stays even with --force: put them on a branch there, "
        "as its line says, end its operation, then `dag cleanup r`\n"
    )
    assert run_cli("cleanup", "r", "--forget") == 1
    err = capsys.readouterr().err
    assert f"is in the middle of {rebase}: end it, then `dag cleanup r --forget` again" in err
    assert "--force" not in err and f"`git -C {path} branch NAME HEAD`" in err, err
    assert git(path, "rev-parse", "HEAD").strip() == amended

    assert run_cli("cleanup", "r", "--force") == 1  # never a commit on no branch
    out = capsys.readouterr().out
    assert f"{kept}it holds {amended_line}, {rescue}\n" in out, out
    assert git(path, "rev-parse", "HEAD").strip() == amended
    git(path, "branch", "rescued", "HEAD")
    assert run_cli("cleanup", "r", "--force") == 0
    out = capsys.readouterr().out
    assert f"  wt-a: an operation of git's under way\n    in the middle of {rebase}\n" in out
    assert not path.exists()
    assert git(git_repo, "rev-parse", "rescued").strip() == amended
