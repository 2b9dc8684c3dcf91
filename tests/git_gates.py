"""Deterministic points inside git, for killing it (or dagspec) exactly there.

``FilterGate``: a smudge filter (``filter.gate.smudge``) that holds the first file it is run
for until the test opens it; git writes files in index order, so a checkout waits there with
the files before written and the files after not. ``CommandGate``: a ``git`` first on PATH
that holds the first call whose arguments contain given words (``worktree remove``) before
running the real git. Both note the held process's pid and wait on a FIFO; the git held is
the leader of its process group (dagspec starts git with ``start_new_session=True``).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from tests.conftest import git
from tests.engine_support import pid_alive
from tests.fake_autospec_fixture import wait_for

_HOLD = """\
if mkdir "{dir}/taken" 2>/dev/null; then
  echo $$ > "{dir}/reached.tmp" && mv "{dir}/reached.tmp" "{dir}/reached"
  read _ < "{dir}/fifo"
fi
"""


class _Gate:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        os.mkfifo(directory / "fifo")

    def reached(self) -> bool:
        return (self.dir / "reached").exists()

    def wait(self, timeout: float = 60) -> int:
        """Wait until a process is held; its pid."""
        wait_for(self.reached, timeout=timeout, what=f"the gate {self.dir.name}")
        return int((self.dir / "reached").read_text())

    def release(self) -> bool:
        """Let the held process go on; False when none waits (it was killed). The held
        process notes its pid just before it opens the FIFO: wait for that open."""
        held = self.wait()
        opened: list[int] = []

        def try_open() -> bool:
            try:
                opened.append(os.open(self.dir / "fifo", os.O_WRONLY | os.O_NONBLOCK))
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                return not pid_alive(held)
            return True

        wait_for(try_open, timeout=60, what=f"the gate {self.dir.name} to be waited on")
        for fd in opened:
            os.write(fd, b"go\n")
            os.close(fd)
        return bool(opened)

    def git_group(self) -> int:
        """The process group of the held process: its git's pid."""
        return os.getpgid(self.wait())


class FilterGate(_Gate):
    """Holds git's checkout of the first file with ``filter=gate`` in ``repo``."""

    def __init__(self, repo: Path, directory: Path) -> None:
        super().__init__(directory)
        script = directory / "smudge"
        script.write_text("#!/bin/sh\n" + _HOLD.format(dir=directory) + "exec cat\n")
        script.chmod(0o755)
        git(repo, "config", "filter.gate.smudge", str(script))


class CommandGate(_Gate):
    """A ``git`` (in ``directory``, to put first on PATH) that holds the first call whose
    arguments contain ``words``, then runs the real git."""

    def __init__(self, directory: Path, words: str) -> None:
        super().__init__(directory)
        self.words = words
        real = shutil.which("git")
        (directory / "bin").mkdir()
        wrapper = directory / "bin" / "git"
        hold = _HOLD.format(dir=directory)
        wrapper.write_text(
            f'#!/bin/sh\ncase " $* " in *" {words} "*)\n{hold};;\nesac\nexec "{real}" "$@"\n'
        )
        wrapper.chmod(0o755)

    @property
    def path(self) -> str:
        return str(self.dir / "bin")


def wait_gone(pid: int, timeout: float = 60) -> None:
    """Until process ``pid`` (not a child of ours) has ended."""
    wait_for(lambda: not pid_alive(pid), timeout=timeout, what=f"process {pid} to end")
