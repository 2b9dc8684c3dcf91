"""Files in the repository's shared git directory that every run of the repository reads
and appends to, one at a time: what runs at once (from one checkout, or from the main
checkout and linked worktrees of it, each with its own ``.autospec/state``) must not both
take. A line each; each file is read and written under an ``flock`` on it, which the
kernel frees when its holder dies, even by SIGKILL.

- ``dagspec-spec-numbers``: every spec number handed out (``spec_dirs.hand_out``);
- ``dagspec-run-ids``: every run id a run took without being given one (``run_ids``).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from dagspec import git_worktree, lock_waits
from dagspec.errors import DagspecError, GitError, too_many_open_files

SPEC_NUMBERS = "dagspec-spec-numbers"
RUN_IDS = "dagspec-run-ids"


@attrs.define
class Ledger:
    """One ledger, held: ``lines``, what it says (a line half written by a killed holder
    included); ``add`` writes one more."""

    fd: int
    path: Path
    lines: list[str]

    def add(self, line: str) -> None:
        """Write ``line`` whole, on a line of its own (after a line a killed holder left
        without its newline), or nothing of it: a write cut short (a full disk, the
        file-size limit: ``ulimit -f``) is taken back, and the file named."""
        data = f"{line}\n".encode("utf-8", "surrogateescape")
        start = None
        try:
            start = os.fstat(self.fd).st_size
            if start and os.pread(self.fd, 1, start - 1) != b"\n":
                data = b"\n" + data
            written = 0
            while written < len(data):
                count = os.write(self.fd, data[written:])
                if count == 0:
                    raise OSError(errno.EIO, "nothing written")
                written += count
        except OSError as error:
            if start is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, start)  # no line cut in half for the next to join
            raise _unusable(self.path, error) from None
        self.lines.append(line)


@contextlib.contextmanager
def held(
    checkout: Path, name: str, stopped: Callable[[], bool] = lambda: False
) -> Iterator[Ledger]:
    """The ledger ``name`` of the repository of ``checkout``, locked: another process (a
    run of the same repository) waits here until this one is done with it, said on stderr.
    Raises ``WaitStopped`` when ``stopped()`` says so while it waits (``lock_waits.hold``)."""
    path = shared_dir(checkout) / name
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as error:
        raise _unusable(path, error) from None
    try:
        note = f"note: waiting for another run of this repository, which holds {path}"
        lock_waits.hold(fd, note, f"another run's lock on {path}", stopped)
        yield Ledger(fd, path, _read(path))
    finally:
        os.close(fd)  # frees the lock


def problem(checkout: Path, name: str) -> str | None:
    """Why the ledger ``name`` of the repository of ``checkout`` could not be read and
    written (``held``), asked without writing anything (preflight); None when it can."""
    path = shared_dir(checkout) / name
    if os.path.lexists(path):
        if not path.is_file():
            return str(_unusable(path, OSError(errno.EISDIR, "not a file")))
        if not os.access(path, os.R_OK | os.W_OK):
            return str(_unusable(path, OSError(errno.EACCES, "cannot be read and written")))
        return None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return str(_unusable(path, OSError(errno.EACCES, "cannot be made there")))
    return None


def read(checkout: Path, name: str) -> list[str]:
    """What the ledger says now, unlocked (a line being added may be missed); nothing when
    there is no such file yet, or it cannot be read."""
    try:
        return _read(shared_dir(checkout) / name)
    except DagspecError:
        return []


def _read(path: Path) -> list[str]:
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape").splitlines()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise _unusable(path, error) from None


def _unusable(path: Path, error: OSError) -> DagspecError:
    advice = too_many_open_files(error, str(path))  # the run's limit, not the file's fault
    if advice is not None:
        return DagspecError(advice)
    fix = "make it a file dagspec can write"
    if error.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):  # nothing was left of it
        fix = "free space on its disk, or raise the file-size limit (ulimit -f)"
    return DagspecError(
        f"cannot read or write {path} ({error.strerror or error}), where the runs of this "
        f"repository write down what they took so that runs at once never take the same: {fix}"
    )


def shared_dir(checkout: Path) -> Path:
    """The repository's shared git directory (``git rev-parse --git-common-dir``), where
    ``checkout`` (the main checkout, or a linked worktree: its ``.git`` file names its own
    git directory, whose ``commondir`` leads there) keeps it; read from files, asked of git
    only when they do not say."""
    try:
        own = git_worktree.own_git_dir(checkout)
    except GitError:
        return checkout / ".git"
    if own == checkout / ".git":
        return own
    shared = git_worktree.commondir_of(own)
    if shared is None:  # a git directory of its own (a submodule, --separate-git-dir)
        return git_worktree.common_dir(checkout) or own
    return shared
