"""git, as small named verbs over one subprocess helper, :func:`run`.

Every call runs with a cleaned environment and insulated from the user's hooks and settings
(:mod:`dagspec.git_env`): dagspec's own git writes are bookkeeping (README, How a run
works). The merge verbs are in :mod:`dagspec.git_merge`, those that make commits (and sign
them) in :mod:`dagspec.git_commit`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagspec import procgroup
from dagspec.errors import DagspecError, GitError, GitOutputError
from dagspec.git_env import INSULATION_ARGS, git_process_env, output_to, read_back
from dagspec.git_output import one_line

# The lowest git that has every command dagspec uses: ``merge-tree --write-tree`` (2.38);
# ``worktree list -z`` (2.36) and ``init --initial-branch`` (2.28) came before it.
MIN_GIT = (2, 38)
MIN_GIT_TEXT = ".".join(map(str, MIN_GIT))
_USAGE = 129  # git's exit code for an unknown option


def run(
    cwd: Path,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    keep_fds: Sequence[int] = (),
    timeout: float | None = None,
    started: Callable[[int], None] | None = None,
) -> str:
    """Run ``git args`` in ``cwd``, insulated, and return stdout (:func:`run_told`)."""
    told = run_told(
        cwd, *args, check=check, env=env, keep_fds=keep_fds, timeout=timeout, started=started
    )
    return told[0]


def run_told(
    cwd: Path,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    keep_fds: Sequence[int] = (),
    timeout: float | None = None,
    started: Callable[[int], None] | None = None,
) -> tuple[str, str]:
    """Run ``git args`` in ``cwd``, insulated, and return stdout and stderr (git says some
    faults only on stderr while exiting 0: ``git_merge.merge_tree``); raise ``GitError`` when it
    fails (the error shows ``git args``, without the insulating options). With ``keep_fds`` (a
    lock git holds: ``checkout_move``), git's output goes to files: a pipe whose reader was
    killed kills git by SIGPIPE at its next line ("Updating files", after 2 s, even to a pipe).
    A git still running after ``timeout`` seconds is ended with all it started, and fails;
    ``started`` hears its pid, the id of its group, as it starts (to end it from elsewhere).

    git runs in a session of its own, with no controlling terminal: a terminal's Ctrl-C
    reaches dagspec, never git mid-checkout; and nothing git starts (ssh-keygen or gpg
    signing a commit) can read a passphrase from the terminal, or be stopped by SIGTTIN
    trying, as it was when git only had a process group of its own."""
    cmd = ["git", *args]
    try:
        with output_to(outlive=bool(keep_fds)) as (out, err):
            done = _git(
                ["git", *INSULATION_ARGS, *args],
                timeout,
                started,
                cwd=cwd,
                env=git_process_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=tuple(keep_fds),
            )
            read_back(done, out, err)
    except (FileNotFoundError, NotADirectoryError):
        # Not a GitError: callers that ask git a question (``ok``, ``repo_root``) must not
        # read "no git" as "no" ("not in a git repository", issue 15). subprocess raises
        # the same error for a missing ``cwd`` as for a missing git (issue 13).
        raise _not_started(cwd) from None
    stdout = done.stdout.decode("utf-8", "surrogateescape")
    stderr = done.stderr.decode("utf-8", "surrogateescape")
    if check and done.returncode != 0:
        if done.returncode == _USAGE and args != ("--version",):
            refuse_old_git(cwd)  # an option git does not know: say why, not git's usage text
        if untrusted := _DUBIOUS.search(stderr):
            raise _not_trusted(untrusted[1])
        raise GitError(cmd, done.returncode, stdout, stderr)
    return stdout, stderr


def _git(
    argv: list[str],
    timeout: float | None,
    started: Callable[[int], None] | None = None,
    **popen: Any,
) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run(argv, **popen)``, but a git that outlives ``timeout`` is ended with
    its whole group (``end_group``: the signer it waits on too, a pipe it holds would keep
    us waiting), and fails with :data:`TIMED_OUT` and a last line of stderr saying so; an
    interrupt ends them too. ``started`` hears git's pid (its group's) once it runs."""
    with subprocess.Popen(argv, **popen) as process:
        try:
            if started is not None:
                started(process.pid)
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = end_group(process)
            said = f"\n{STOPPED} after {timeout:g} s\n".encode()
            return subprocess.CompletedProcess(argv, TIMED_OUT, out, (err or b"") + said)
        except BaseException:  # KeyboardInterrupt included, as subprocess.run does
            end_group(process)
            raise
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def end_group(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """End a git and all it started (its own session: its group), and what it wrote.
    SIGTERM first: git removes its temporary files then (a signing git's
    ``$TMPDIR/.git_signing_buffer_tmp*``, which SIGKILL left behind in the user's /tmp);
    then SIGKILL, for a signer that outlived it."""
    procgroup.signal_group(process.pid, signal.SIGTERM)
    _exited(process, _TERM_GRACE)
    procgroup.signal_group(process.pid, signal.SIGKILL)
    try:
        out, err = process.communicate(timeout=_GRACE)
    except subprocess.TimeoutExpired:  # a daemon of another group holds the pipes
        return b"", b""
    return out or b"", err or b""


def _exited(process: subprocess.Popen[bytes], within: float) -> None:
    """Wait up to ``within`` seconds for ``process`` to exit, leaving it unreaped (a zombie
    keeps its pid, so its group's id names no stranger's group when it is signalled next).
    One reaped already (``Popen.communicate`` waits a moment for it at a Ctrl-C) is not
    waited for: its group's id stays its group's while a member of it lives.
    """
    if not hasattr(os, "waitid"):  # not on every Unix: reaped, as subprocess does
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=within)
        return
    deadline, pause = time.monotonic() + within, 0.0005
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    try:  # reaped already (ChildProcessError): Popen's own wait at an interrupt reaps it
        while os.waitid(os.P_PID, process.pid, flags) is None and time.monotonic() < deadline:
            time.sleep(pause)  # as Popen.wait(timeout) polls
            pause = min(pause * 2, 0.05)
    except ChildProcessError:
        return


TIMED_OUT = -int(signal.SIGKILL)
STOPPED = "dagspec stopped git: it was still waiting"
_GRACE = 5.0  # seconds for what git wrote before it was killed
_TERM_GRACE = 2.0  # seconds for git to remove its temporary files after SIGTERM


def _not_started(cwd: Path) -> DagspecError:
    """Why git could not be started in ``cwd``: the directory is gone, or git is."""
    if not cwd.is_dir():
        return DagspecError(
            f"{cwd} is gone (moved or deleted?), so git cannot run there: if the repository "
            "was moved, run dag from where it is now"
        )
    return DagspecError("git is not installed or not on PATH: install git 2.38 or newer")


# git 2.35.2+ refuses a repository another user owns (git-config(1), safe.directory).
_DUBIOUS = re.compile(r"detected dubious ownership in repository at '(.*)'")


def _not_trusted(path: str) -> DagspecError:
    return DagspecError(
        f"git refuses to work in {path}: another user owns it (git's safe.directory check); "
        f"if you trust it, run `git config --global --add safe.directory {path}`, then try again"
    )


def refuse_old_git(cwd: Path) -> None:
    """Raise ``DagspecError`` naming the git needed when the one on PATH is older."""
    found = version(cwd)
    if found is None or found < MIN_GIT:
        shown = ".".join(map(str, found)) if found else "of an unknown version"
        raise DagspecError(
            f"git {shown} is too old: dagspec needs git {MIN_GIT_TEXT} or newer "
            "(for `git merge-tree --write-tree`); install a newer git"
        )


def ok(cwd: Path, *args: str) -> bool:
    """Whether ``git args`` succeeds (for questions such as "does this ref exist")."""
    try:
        run(cwd, *args)
    except GitError:
        return False
    return True


def repo_root(start: Path) -> Path | None:
    """The top of the working tree containing ``start``, or None outside any repository."""
    if not start.is_dir():
        return None
    args = ("rev-parse", "--show-toplevel")
    try:
        top = one_line(args, run(start, *args))
    except GitOutputError:
        raise
    except GitError:
        return None
    return Path(top) if top else None


def checkout_root(start: Path, where: str) -> Path:
    """The top of the checkout containing ``start``, the directory ``where`` names (``the
    current directory``, ``--repo X``). Raises ``DagspecError`` with git's own reason, in
    one line, when git cannot work there for another reason than no repository at all (a
    bare repository, a broken configuration, an extension of a newer git...)."""
    args = ("rev-parse", "--show-toplevel")
    try:
        top = one_line(args, run(start, *args))
    except GitOutputError:
        raise
    except GitError as failed:
        raise _no_checkout(failed, where) from None
    return Path(top)


def _no_checkout(failed: GitError, where: str) -> DagspecError:
    """Why git found no checkout at ``where``, in one line: git's own reason (its lines
    joined) unless it is plainly that there is no repository there."""
    said = " ".join(line.strip() for line in failed.stderr.splitlines() if line.strip())
    said = said.removeprefix("fatal: ")
    if not said or said.startswith("not a git repository"):
        return DagspecError(f"{where} is not in a git repository: cd into one, or pass --repo")
    if "must be run in a work tree" in said:
        return DagspecError(
            f"{where} is in a git repository without a checkout (a bare repository, one with "
            "core.bare=true, or inside a .git directory): run dag in a checkout of it, or "
            "pass --repo naming one"
        )
    newer = " (the repository was made by a newer git: use it)" if "extension" in said else ""
    return DagspecError(
        f"git cannot work in {where}: {said}{newer}; put that right, then try again"
    )


def version(cwd: Path) -> tuple[int, ...] | None:
    """git's version (``(2, 39, 5)``), or None when it cannot be told from ``git --version``
    ("git version 2.39.3 (Apple Git-146)" gives ``(2, 39, 3)``)."""
    words = run(cwd, "--version").split()
    numbers = words[2].split(".") if len(words) > 2 else []
    digits = [int(n) for n in itertools.takewhile(str.isdigit, numbers)]
    return tuple(digits) if len(digits) >= 2 else None
