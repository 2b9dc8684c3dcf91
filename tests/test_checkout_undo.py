"""Undoing a fast-forward a killed git left half done touches only what is provably git's:
all of the new content, or a start of it written inside the window git was writing, where
the index still holds the old entry; the rest is named as left (issue 11)."""

from __future__ import annotations

import os
from pathlib import Path

from dagspec.checkout_undo import Undone, undo
from tests.conftest import git

S = 1_000_000_000  # ns in a second
ALWAYS = (0, 2**63)  # a window no modification time is outside


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

    assert undo(git_repo, old, new, ALWAYS) == Undone(True, ("x.txt",))
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

    assert undo(git_repo, old, new, ALWAYS) == Undone(False, ("added.txt",))
    assert (git_repo / "added.txt").read_text() == "from the user\n"


def test_a_path_the_user_staged_since_is_left_alone(git_repo: Path) -> None:
    old = _commit(git_repo, {"a.txt": "a\n"}, "old")
    new = _commit(git_repo, {"a.txt": "a\nb\n"}, "new")
    git(git_repo, "reset", "-q", "--hard", old)
    (git_repo / "a.txt").write_text("a\nb\n")
    git(git_repo, "add", "a.txt")  # the index no longer holds the old entry

    assert undo(git_repo, old, new, ALWAYS) == Undone(False, ("a.txt",))
    assert (git_repo / "a.txt").read_text() == "a\nb\n"


def _cut_short(repo: Path) -> tuple[str, str]:
    """A move of ``a.txt`` from ``a`` to ``a b c``, and ``new.txt`` added, that git left cut
    short in both files, at modification time 1000 s."""
    old = _commit(repo, {"a.txt": "a\n"}, "old")
    new = _commit(repo, {"a.txt": "a\nb\nc\n", "new.txt": "new\n" * 10}, "new")
    git(repo, "reset", "-q", "--hard", old)
    (repo / "a.txt").write_text("a\nb\n")
    (repo / "new.txt").write_text("")  # created, nothing written yet
    for name in ("a.txt", "new.txt"):
        os.utime(repo / name, ns=(1000 * S, 1000 * S))
    return old, new


def test_a_start_of_the_new_content_is_gits_only_inside_the_window(git_repo: Path) -> None:
    old, new = _cut_short(git_repo)
    assert undo(git_repo, old, new, (999 * S, 1000 * S)) == Undone(True, ())
    assert (git_repo / "a.txt").read_text() == "a\n" and not (git_repo / "new.txt").exists()


def test_a_start_of_the_new_content_after_the_window_is_the_users(git_repo: Path) -> None:
    """An emptied file, a cut tail: the user's edits after git was gone, left and named."""
    old, new = _cut_short(git_repo)
    assert undo(git_repo, old, new, (998 * S, 999 * S)) == Undone(False, ("a.txt", "new.txt"))
    assert undo(git_repo, old, new, None) == Undone(False, ("a.txt", "new.txt"))
    assert (git_repo / "a.txt").read_text() == "a\nb\n" and (git_repo / "new.txt").exists()


def test_all_of_the_new_content_is_undone_whenever_it_was_written(git_repo: Path) -> None:
    """Its bytes are the new commit's: removing it loses nothing, the next move writes it."""
    old, new = _cut_short(git_repo)
    (git_repo / "a.txt").write_text("a\nb\nc\n")
    assert undo(git_repo, old, new, None) == Undone(True, ("new.txt",))
    assert (git_repo / "a.txt").read_text() == "a\n"
