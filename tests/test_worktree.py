"""A spec's worktree with real git: creation, copied configuration, numbers, work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagspec import compat, spec_dirs, worktree
from dagspec.worktree import WorktreeError
from tests.conftest import git


def head(repo: Path, rev: str = "HEAD") -> str:
    return git(repo, "rev-parse", rev).strip()


def commit_file(where: Path, name: str, text: str, message: str = "work") -> None:
    (where / name).parent.mkdir(parents=True, exist_ok=True)
    (where / name).write_text(text)
    git(where, "add", name)
    git(where, "commit", "-q", "-m", message)


@pytest.fixture
def make(git_repo: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Create a worktree ``wts/r/<name>`` on ``dag/r/<name>`` from main, recording the
    branches there were then, as a drive does (``compat.note_branches``)."""

    def make(name: str) -> Path:
        path = tmp_path / "wts" / "r" / name
        before = branches(git_repo)
        worktree.create_worktree(git_repo, path, branch=f"dag/r/{name}", start=head(git_repo))
        compat.note_branches(path, before)
        return path

    return make


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").split()


def test_a_new_worktree_is_on_its_branch_at_the_base(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    path = make("a")
    assert git(path, "symbolic-ref", "--short", "HEAD").strip() == "dag/r/a"
    assert head(path) == head(git_repo)
    assert (path / "README.md").read_text() == "demo\n"


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda p: (p.mkdir(), (p / "mine.txt").write_text("user data\n")), id="dir"),
        pytest.param(lambda p: p.mkdir(), id="empty-dir"),
        pytest.param(lambda p: p.write_text("user data\n"), id="file"),
        pytest.param(lambda p: p.symlink_to(p.parent.parent / "elsewhere"), id="dangling-link"),
    ],
)
def test_anything_at_the_path_is_refused_never_removed_or_written_through(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    plant,  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "wts" / "r" / "a"
    path.parent.mkdir(parents=True)
    plant(path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(WorktreeError, match=f"{path} is already there") as caught:
        make("a")
    assert "remove" not in str(caught.value).split(":", 1)[1].replace("removes", "")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "wts" / "elsewhere").exists()
    assert "dag/r/a" not in branches(git_repo)


def test_a_symlinked_run_directory_is_not_written_through(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "wts").mkdir()
    (tmp_path / "wts" / "r").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(WorktreeError, match=r"is a symlink .*keep the name r\)"):
        make("a")
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert "dag/r/a" not in branches(git_repo)


def test_a_run_directory_moved_and_linked_back_under_its_name_is_written_in(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """``wts/r`` moved to another disk as ``disk2/r`` and linked back: the run's next
    worktree goes there (it failed "is a symlink"); under another name it is still refused."""
    (tmp_path / "disk2" / "r").mkdir(parents=True)
    (tmp_path / "wts").mkdir()
    (tmp_path / "wts" / "r").symlink_to(tmp_path / "disk2" / "r")
    assert make("a") == tmp_path / "wts" / "r" / "a"
    assert (
        git(tmp_path / "disk2" / "r" / "a", "symbolic-ref", "--short", "HEAD").strip() == "dag/r/a"
    )


def test_another_worktree_at_the_path_is_left_alone(git_repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "wts" / "r" / "a"
    git(git_repo, "worktree", "add", "-q", "-b", "dag/old/a", str(other))
    with pytest.raises(WorktreeError, match="is already there"):
        worktree.create_worktree(git_repo, other, branch="dag/r/a", start="HEAD")
    assert git(other, "symbolic-ref", "--short", "HEAD").strip() == "dag/old/a"
    assert "dag/r/a" not in branches(git_repo)


def test_an_existing_branch_with_work_of_its_own_is_not_taken_over(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    git(git_repo, "checkout", "-q", "-b", "dag/r/a")
    commit_file(git_repo, "mine.txt", "work\n")
    git(git_repo, "checkout", "-q", "main")
    with pytest.raises(WorktreeError, match="branch dag/r/a exists already"):
        make("a")


def test_the_leftover_of_a_killed_creation_is_replaced(
    git_repo: Path, make, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    leftover = tmp_path / "wts" / "r" / "a"
    leftover.parent.mkdir(parents=True)
    git(git_repo, "worktree", "add", "-q", "-b", "dag/r/a", str(leftover))
    (leftover / "half.txt").write_text("left by the killed creation\n")
    path = make("a")  # the driver was killed before recording the branch
    assert git(path, "symbolic-ref", "--short", "HEAD").strip() == "dag/r/a"
    assert not (path / "half.txt").exists()


def test_reopen_keeps_an_existing_worktree(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    path = make("a")
    (path / "work.txt").write_text("uncommitted\n")
    worktree.reopen_worktree(git_repo, path, branch="dag/r/a")
    assert (path / "work.txt").read_text() == "uncommitted\n"


def test_reopen_recreates_a_deleted_worktree_from_its_branch(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    import shutil

    path = make("a")
    commit_file(path, "a.txt", "committed\n")
    shutil.rmtree(path)
    worktree.reopen_worktree(git_repo, path, branch="dag/r/a")
    assert (path / "a.txt").read_text() == "committed\n"


def test_reopen_without_the_branch_is_a_clear_error(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    import shutil

    path = make("a")
    shutil.rmtree(path)
    git(git_repo, "worktree", "prune")
    git(git_repo, "branch", "-D", "dag/r/a")
    with pytest.raises(WorktreeError, match="branch dag/r/a was deleted"):
        worktree.reopen_worktree(git_repo, path, branch="dag/r/a")


def _enclosed(tmp_path: Path) -> Path:
    """Make ``wts``, where the worktrees are, a repository of its own on ``main``: what a
    plain directory left at a worktree's path would be inside."""
    outer = tmp_path / "wts"
    git(outer, "init", "-q", "-b", "main")
    git(outer, "commit", "-q", "--allow-empty", "-m", "outer")
    return outer


def test_reopen_remakes_a_worktree_whose_place_is_an_empty_plain_directory(  # type: ignore[no-untyped-def]
    git_repo: Path, tmp_path: Path, make
) -> None:
    import shutil

    path = make("a")
    commit_file(path, "a.txt", "committed\n")
    outer = _enclosed(tmp_path)
    shutil.rmtree(path)
    path.mkdir()  # no longer a worktree: git there would act on the outer repository
    worktree.reopen_worktree(git_repo, path, branch="dag/r/a")
    assert (path / "a.txt").read_text() == "committed\n"
    assert git(path, "symbolic-ref", "--short", "HEAD").strip() == "dag/r/a"
    assert git(outer, "symbolic-ref", "--short", "HEAD").strip() == "main"


def test_reopen_refuses_a_plain_directory_with_files_where_the_worktree_was(  # type: ignore[no-untyped-def]
    git_repo: Path, tmp_path: Path, make
) -> None:
    import shutil

    path = make("a")
    outer = _enclosed(tmp_path)
    shutil.rmtree(path)
    path.mkdir()
    (path / "mine.txt").write_text("user data\n")
    with pytest.raises(WorktreeError, match="no longer the worktree git registered") as raised:
        worktree.reopen_worktree(git_repo, path, branch="dag/r/a")
    assert "made again from its branch dag/r/a" in str(raised.value)
    assert (path / "mine.txt").read_text() == "user data\n"
    assert not (path / ".git").exists()
    with pytest.raises(WorktreeError, match="no longer the worktree git registered"):
        worktree.unsaved_work(path)  # never the outer repository's status
    assert git(outer, "status", "--porcelain").strip() == "?? r/"


# --- copied configuration -------------------------------------------------------------------


def user_config(repo: Path) -> None:
    (repo / ".autospec" / "memory").mkdir(parents=True)
    (repo / ".autospec" / "memory" / "constitution.yaml").write_text("constitution: {}\n")
    (repo / ".autospec" / "state" / "dag-runs").mkdir(parents=True)
    (repo / ".autospec" / "state" / "dag-runs" / "r.yaml").write_text("format: 1\n")
    (repo / ".claude" / "commands").mkdir(parents=True)
    (repo / ".claude" / "commands" / "autospec.specify.md").write_text("specify\n")


def test_configuration_is_copied_without_state_and_never_committed(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
) -> None:
    user_config(git_repo)
    path = make("a")
    worktree.copy_configuration(git_repo, path)
    assert (path / ".autospec" / "memory" / "constitution.yaml").read_text() == "constitution: {}\n"
    assert (path / ".claude" / "commands" / "autospec.specify.md").exists()
    assert not (path / ".autospec" / "state").exists()
    (path / ".autospec" / "context").mkdir()
    (path / ".autospec" / "context" / "phase-1.yaml").write_text("temporary\n")
    (path / "work.txt").write_text("work\n")
    git(path, "add", "-A")
    assert git(path, "diff", "--cached", "--name-only").split() == ["work.txt"]
    assert git(git_repo, "status", "--porcelain").split() == ["??", ".autospec/", "??", ".claude/"]


def test_beside_tracked_configuration_only_the_copies_are_hidden(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
) -> None:
    user_config(git_repo)
    (git_repo / ".autospec" / "config.yml").write_text("implement_method: phases\n")
    git(git_repo, "add", ".autospec/config.yml")
    git(git_repo, "commit", "-q", "-m", "config")
    path = make("a")
    worktree.copy_configuration(git_repo, path)
    assert (path / ".autospec" / "memory" / "constitution.yaml").exists()
    (path / ".autospec" / "config.yml").write_text("implement_method: tasks\n")
    (path / ".autospec" / "notes.md").write_text("the agent's\n")
    git(path, "add", "-A")
    staged = git(path, "diff", "--cached", "--name-only").split()
    assert staged == [".autospec/config.yml", ".autospec/notes.md"]


def test_a_copy_that_cannot_be_hidden_is_not_left_there(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
) -> None:
    (git_repo / ".claude").mkdir()
    (git_repo / ".claude" / ".gitignore").write_text("*.log\n")
    git(git_repo, "add", ".claude/.gitignore")
    git(git_repo, "commit", "-q", "-m", "claude")
    (git_repo / ".claude" / "settings.json").write_text("{}\n")
    path = make("a")
    worktree.copy_configuration(git_repo, path)
    assert not (path / ".claude" / "settings.json").exists()
    assert git(path, "status", "--porcelain") == ""


def test_copying_again_changes_nothing(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    user_config(git_repo)
    path = make("a")
    worktree.copy_configuration(git_repo, path)
    worktree.copy_configuration(git_repo, path)
    assert git(path, "status", "--porcelain") == ""


def test_configuration_linked_from_elsewhere_is_copied_from_where_it_leads(
    git_repo: Path,
    tmp_path: Path,
    make,  # type: ignore[no-untyped-def]
) -> None:
    """`.claude -> ~/dotfiles/claude`, `.autospec -> ...`: copied (the link was passed over
    silently); the state left out all the same, nothing committed, the source untouched."""
    shared = tmp_path / "dotfiles"
    user_config(shared)
    for name in (".autospec", ".claude"):
        (git_repo / name).symlink_to(shared / name, target_is_directory=True)
    (git_repo / ".gitignore").write_text(".autospec\n.claude\n")
    git(git_repo, "add", ".gitignore")
    git(git_repo, "commit", "-q", "-m", "ignore the links")
    path = make("a")
    worktree.copy_configuration(git_repo, path)
    assert (path / ".claude" / "commands" / "autospec.specify.md").read_text() == "specify\n"
    assert (path / ".autospec" / "memory" / "constitution.yaml").exists()
    assert not (path / ".autospec" / "state").exists()
    assert not (path / ".claude").is_symlink()
    assert git(path, "status", "--porcelain") == ""
    assert sorted(p.name for p in (shared / ".claude").iterdir()) == ["commands"]


def test_configuration_linked_to_the_repository_itself_is_not_copied(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
) -> None:
    (git_repo / ".claude").symlink_to(".", target_is_directory=True)
    path = make("a")
    worktree.copy_configuration(git_repo, path)
    assert not (path / ".claude").exists()


# --- numbers ---------------------------------------------------------------------------------


def test_numbers_are_handed_out_above_everything_autospec_sees(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
) -> None:
    commit_file(git_repo, "specs/007-old/spec.yaml", "x\n")
    git(git_repo, "branch", "009-stray")
    a, b = make("a"), make("b")
    assert spec_dirs.reserve_number(git_repo, a, 0) == 10
    assert spec_dirs.reserve_number(git_repo, b, 10) == 11
    assert sorted(p.name for p in (b / "specs").iterdir()) == [
        "007-old",
        "010-reserved-by-dagspec",
    ]
    assert git(b, "status", "--porcelain") == ""
    spec_dirs.release_number(b)
    assert sorted(p.name for p in (b / "specs").iterdir()) == ["007-old"]


def test_a_reservation_with_something_inside_is_not_removed(make) -> None:  # type: ignore[no-untyped-def]
    a = make("a")
    spec_dirs.reserve_number(a.parents[2] / "repo", a, 4)
    (a / "specs" / "004-reserved-by-dagspec" / "spec.yaml").write_text("x\n")
    spec_dirs.release_number(a)
    assert (a / "specs" / "004-reserved-by-dagspec" / "spec.yaml").exists()


@pytest.mark.parametrize(
    ("name", "number"), [("004-user-auth", 4), ("specs/012-x", 12), ("auth", 0), (None, 0)]
)
def test_number_of(name: str | None, number: int) -> None:
    assert spec_dirs.number_of(name) == number


def test_the_new_spec_dir_is_the_one_the_base_and_other_specs_lack(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
) -> None:
    commit_file(git_repo, "specs/001-old/spec.yaml", "x\n")
    a = make("a")
    spec_dirs.reserve_number(git_repo, a, 2)
    assert spec_dirs.new_spec_dir(a, head(git_repo), known=[]) is None
    (a / "specs" / "002-dep").mkdir()
    (a / "specs" / "004-mine").mkdir()
    assert spec_dirs.new_spec_dir(a, head(git_repo), known=["002-dep"]) == "004-mine"


def test_an_untracked_spec_dir_without_spec_is_discarded(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    commit_file(git_repo, "specs/001-old/notes.md", "x\n")
    a = make("a")
    (a / "specs" / "002-half").mkdir()
    (a / "specs" / "002-half" / "draft.md").write_text("x\n")
    spec_dirs.discard_spec_dir(a, "002-half")
    spec_dirs.discard_spec_dir(a, "001-old")
    assert sorted(p.name for p in (a / "specs").iterdir()) == ["001-old"]


# --- after the agent ------------------------------------------------------------------------


def test_uncommitted_work_is_committed_on_the_spec_branch(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    a = make("a")
    (a / "new.txt").write_text("new\n")
    done = worktree.collect_work(git_repo, a, branch="dag/r/a", message="dag(r): a")
    assert done == worktree.Collected(stray=None, committed=True)
    assert git(a, "log", "-1", "--format=%s").strip() == "dag(r): a"
    assert git(a, "status", "--porcelain") == ""


def test_nothing_to_commit_makes_no_commit(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    a = make("a")
    done = worktree.collect_work(git_repo, a, branch="dag/r/a", message="dag(r): a")
    assert done == worktree.Collected(stray=None, committed=False)
    assert head(a) == head(git_repo)


def test_work_on_a_stray_branch_comes_back_and_the_branch_goes(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    a = make("a")
    git(a, "checkout", "-q", "-b", "003-auth")
    commit_file(a, "specs/003-auth/spec.yaml", "spec\n", "docs(spec): agent's commit")
    (a / "left.txt").write_text("left over\n")
    done = worktree.collect_work(git_repo, a, branch="dag/r/a", message="dag(r): a")
    assert done == worktree.Collected(stray="003-auth", committed=True)
    assert git(a, "symbolic-ref", "--short", "HEAD").strip() == "dag/r/a"
    log = git(git_repo, "log", "--format=%s", "dag/r/a").splitlines()
    assert log[:2] == ["dag(r): a", "docs(spec): agent's commit"]
    assert "003-auth" not in branches(git_repo)


@pytest.mark.parametrize("name", ["feature", "005-login"])
def test_a_branch_of_the_users_is_never_taken_for_autospecs(
    git_repo: Path,
    make,  # type: ignore[no-untyped-def]
    name: str,
) -> None:
    """The user switched the spec's worktree to a branch they had (named like autospec's
    or not): committing the spec's work there merged their unfinished branch as the spec."""
    git(git_repo, "branch", name)
    a = make("a")
    git(a, "switch", "-q", name)
    commit_file(a, "theirs.txt", "wip\n", "their unfinished work")
    (a / "agent.txt").write_text("the agent's\n")
    tip = git(git_repo, "rev-parse", name).strip()
    with pytest.raises(WorktreeError, match=f"on the branch {name}, not the spec's dag/r/a"):
        worktree.collect_work(git_repo, a, branch="dag/r/a", message="dag(r): a")
    assert git(git_repo, "rev-parse", name).strip() == tip  # nothing committed on it
    assert git(git_repo, "rev-parse", "dag/r/a").strip() == head(git_repo)
    assert (a / "agent.txt").exists()  # the work waits, uncommitted, for the switch back
    assert compat.take_back(git_repo, a, branch="dag/r/a", base_commit=head(git_repo)) is None
    assert name in branches(git_repo)


def test_work_that_does_not_descend_from_the_branch_is_an_error(git_repo: Path, make) -> None:  # type: ignore[no-untyped-def]
    a = make("a")
    commit_file(a, "x.txt", "x\n")
    git(a, "checkout", "-q", "-b", "004-elsewhere", head(git_repo))
    (a / "y.txt").write_text("y\n")
    with pytest.raises(WorktreeError, match="does not descend from dag/r/a"):
        worktree.collect_work(git_repo, a, branch="dag/r/a", message="m")


def test_the_root_removed_by_another_run_while_this_one_makes_its_directory(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run's last worktree removed: it removes the default root it finds empty
    (``removal.remove_emptied_places``) just after this run made that root and before it
    made its own directory in it. This run makes the root again; it used to fail with
    "No such file or directory"."""
    root = tmp_path / "repo.worktrees"
    make_directory = os.mkdir
    removed: list[Path] = []

    def then_removed(path: str | os.PathLike[str], *args: int) -> None:
        make_directory(path, *args)
        if Path(path) == root and not removed:
            root.rmdir()  # the other run's rmdir, found empty
            removed.append(root)

    monkeypatch.setattr(os, "mkdir", then_removed)
    path = root / "r" / "a"
    worktree.create_worktree(git_repo, path, branch="dag/r/a", start=head(git_repo))
    assert removed == [root]
    assert git(path, "symbolic-ref", "--short", "HEAD").strip() == "dag/r/a"
