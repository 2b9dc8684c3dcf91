"""Undoing a fast-forward a killed git left half done touches only what is provably git's:
a start of the new content where the index still holds the old entry (issue 11)."""

from __future__ import annotations

from pathlib import Path

from dagspec.checkout_undo import undo
from tests.conftest import git


def _commit(repo: Path, files: dict[str, str | None], message: str) -> str:
    for name, text in files.items():
        if text is None:
            git(repo, "rm", "-q", name)
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
            git(repo, "add", name)
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def test_what_git_wrote_goes_and_what_it_removed_comes_back(git_repo: Path) -> None:
    old = _commit(git_repo, {"kept.txt": "one\n", "gone.txt": "gone\n", "x.txt": "x\n"}, "old")
    new = _commit(
        git_repo,
        {"gone.txt": None, "kept.txt": "one\ntwo\n", "dir/new.txt": "new\n" * 100, "x.txt": "y\n"},
        "new",
    )
    git(git_repo, "reset", "-q", "--hard", old)
    # As a git killed midway leaves it: gone.txt removed, kept.txt rewritten whole,
    # dir/new.txt cut short; x.txt not reached yet, then edited by the user.
    (git_repo / "gone.txt").unlink()
    (git_repo / "kept.txt").write_text("one\ntwo\n")
    (git_repo / "dir").mkdir()
    (git_repo / "dir" / "new.txt").write_text("new\n" * 10)
    (git_repo / "x.txt").write_text("the user's\n")
    (git_repo / "mine.txt").write_text("the user's, untracked\n")

    assert undo(git_repo, old, new)
    assert (git_repo / "gone.txt").read_text() == "gone\n"
    assert (git_repo / "kept.txt").read_text() == "one\n"
    assert not (git_repo / "dir").exists()
    assert (git_repo / "x.txt").read_text() == "the user's\n"
    status = git(git_repo, "status", "--porcelain", "--untracked-files=all")
    assert status == " M x.txt\n?? mine.txt\n"


def test_a_file_that_is_not_a_start_of_the_new_content_is_the_users(git_repo: Path) -> None:
    old = git(git_repo, "rev-parse", "HEAD").strip()
    new = _commit(git_repo, {"added.txt": "from the run\n"}, "new")
    git(git_repo, "reset", "-q", "--hard", old)
    (git_repo / "added.txt").write_text("from the user\n")

    assert not undo(git_repo, old, new)
    assert (git_repo / "added.txt").read_text() == "from the user\n"


def test_a_path_the_user_staged_since_is_left_alone(git_repo: Path) -> None:
    old = _commit(git_repo, {"a.txt": "a\n"}, "old")
    new = _commit(git_repo, {"a.txt": "a\nb\n"}, "new")
    git(git_repo, "reset", "-q", "--hard", old)
    (git_repo / "a.txt").write_text("a\nb\n")
    git(git_repo, "add", "a.txt")  # the index no longer holds the old entry

    assert not undo(git_repo, old, new)
    assert (git_repo / "a.txt").read_text() == "a\nb\n"
