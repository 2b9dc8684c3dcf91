"""What cannot be copied into a worktree (issue 11): a FIFO, a socket or a device node in
the main checkout's ``.autospec/`` (or an ``execution.copy`` path) is skipped with a note
in the spec's log; an unreadable file ends the spec with one line naming it; a symbolic
link loop is copied as the link it is. Real files, real FIFOs, sockets and device nodes."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dagspec.copies import CopyError, copy_tree
from tests.conftest import git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)


@contextlib.contextmanager
def _socket_at(path: Path) -> Iterator[None]:
    """A listening Unix socket at ``path`` (as a daemon's), for the block."""
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        yield
    finally:
        server.close()


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "config.yml").write_text("kept\n")
    (root / "sub" / "more.yml").write_text("kept too\n")
    os.mkfifo(root / "pipe")
    (root / "loop").symlink_to("loop")  # a symbolic link to itself
    return root


def test_special_files_are_skipped_and_named(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    skipped: list[str] = []
    with _socket_at(source / "sub" / "daemon.sock"):
        made = copy_tree(source, tmp_path / "dst", skipped=skipped)
    assert sorted(p.relative_to(tmp_path / "dst").as_posix() for p in made) == [
        "config.yml",
        "loop",
        "sub/more.yml",
    ]
    assert sorted(skipped) == [
        f"{source / 'pipe'}: a named pipe (FIFO)",
        f"{source / 'sub' / 'daemon.sock'}: a socket",
    ]
    assert (tmp_path / "dst" / "loop").readlink() == Path("loop")


def test_a_device_node_is_not_read(tmp_path: Path) -> None:
    """/dev/zero's device number: copied as a file it would fill the disk."""
    source = tmp_path / "src"
    source.mkdir()
    try:
        os.mknod(source / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("no right to make a device node here")
    skipped: list[str] = []
    assert copy_tree(source, tmp_path / "dst", skipped=skipped) == []
    assert skipped == [f"{source / 'zero'}: a character device"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_one_line_naming_it(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    (source / "sub" / "secret.yml").write_text("x\n")
    (source / "sub" / "secret.yml").chmod(0)
    with pytest.raises(CopyError) as raised:
        copy_tree(source, tmp_path / "dst", skipped=[])
    assert str(raised.value) == (
        f"cannot copy {source / 'sub' / 'secret.yml'}: Permission denied: make it readable, "
        "or move it elsewhere"
    )


def test_a_path_that_cannot_be_made_is_one_line_naming_it(tmp_path: Path) -> None:
    """The worktree has a file where the copy needs a directory (root can do this too)."""
    source = _tree(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "sub").write_text("a file, not a directory\n")
    with pytest.raises(CopyError) as raised:
        copy_tree(source, tmp_path / "dst", skipped=[])
    message = str(raised.value)
    assert message.startswith(f"cannot copy {source / 'sub'}: ") and "\n" not in message
    assert message.endswith(": fix that, then retry the spec"), message


@pytest.mark.slow
def test_a_run_with_a_fifo_and_a_socket_in_autospec_completes(
    project: Project, run_cli: Callable[..., int]
) -> None:
    os.mkfifo(project.repo / ".autospec" / "events.fifo")
    (project.repo / "shared").mkdir()
    os.mkfifo(project.repo / "shared" / "pipe")
    (project.repo / "shared" / "data.txt").write_text("data\n")
    (project.repo / ".gitignore").write_text("shared\n")
    git(project.repo, "add", ".gitignore")
    git(project.repo, "commit", "-qm", "ignore shared")
    project.write_dag(dag_text("a", extra="execution:\n  copy: [shared]\n"))
    with _socket_at(project.repo / ".autospec" / "daemon.sock"):
        assert run_cli("run", "dag.yaml", "--run-id", "r", "--no-merge") == 0
    assert project.statuses() == {"a": "completed"}
    log = (project.repo / ".autospec" / "state" / "dag-runs" / "r" / "logs" / "a.log").read_text()
    fifo = project.repo / ".autospec" / "events.fifo"
    assert f"configuration: skipped {fifo}: a named pipe (FIFO)" in log
    assert "configuration: skipped " in log and ".autospec/daemon.sock: a socket" in log
    assert f"execution.copy: skipped {project.repo / 'shared' / 'pipe'}: a named pipe" in log
    assert (project.worktree("a") / "shared" / "data.txt").read_text() == "data\n"
