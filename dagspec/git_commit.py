"""The git verbs that make commits: a worktree's work committed, a commit object built;
each signed when the user's configuration asks (``commit.gpgSign``), within
:func:`signing_wait` (``SignerTimedOut`` beyond), and never waiting for a passphrase
(``LockedSigningKey`` says what to do). A second Ctrl-C ends the signing gits of a drive
or a merge (:func:`stop_signers`). Every call goes through :func:`dagspec.git.run`,
cleaned and insulated.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from dagspec import procgroup
from dagspec.durations import duration_problem, parse_duration
from dagspec.errors import (
    SIGNING_WAIT_VARIABLE,
    DagspecError,
    GitError,
    LockedSigningKey,
    SignerTimedOut,
    SigningStopped,
)
from dagspec.git import STOPPED, TIMED_OUT, ok, run


def signs_commits(repo: Path) -> bool:
    """Whether the user's configuration asks for signed commits (``commit.gpgSign``)."""
    out = run(repo, "config", "--type=bool", "--get", "commit.gpgsign", check=False)
    return out.strip() == "true"


def _sign_flag(sign: bool) -> str:
    return "--gpg-sign" if sign else "--no-gpg-sign"


# How long a signing git may take unless ``$DAGSPEC_SIGNING_WAIT`` says (``signing_wait``).
# A signer never asks anyone here (``git_env.NO_PROMPTS``), but one can still wait: a
# pinentry window that gpg-agent opens on its own display, a hardware key waiting for a touch.
SIGNING_WAIT = 60.0

# What a signer says when its key needs a passphrase nobody can type: ssh-keygen, with no
# terminal and no askpass, reads an empty one; gpg has no pinentry it may use.
_NEEDS_PASSPHRASE = re.compile(
    "incorrect passphrase|No pinentry|Inappropriate ioctl for device|No passphrase given"
    "|Bad passphrase|Operation cancelled"
)


_GPG_FAILED = "gpg failed to sign the data"


# The most ``$DAGSPEC_SIGNING_WAIT`` may give: a day. Beyond about 596 hours the wait is
# too large for poll(2), the wait of ``communicate``: ``OverflowError``, a crash.
SIGNING_WAIT_MOST = 24 * 3600.0


def signing_wait() -> float:
    """Seconds a signing git may take: ``$DAGSPEC_SIGNING_WAIT`` (``90s``, ``5m``), else
    :data:`SIGNING_WAIT`. Raises ``DagspecError`` when it is set to no duration above 0
    (``durations.duration_problem``: as ``--timeout`` is told), or to more than
    :data:`SIGNING_WAIT_MOST`."""
    given = os.environ.get(SIGNING_WAIT_VARIABLE, "").strip()
    if not given:
        return SIGNING_WAIT
    seconds = parse_duration(given)
    unset = f"or unset it (then a signer gets {SIGNING_WAIT:g} s)"
    problem = duration_problem(given)
    if problem is not None or seconds is None:
        raise DagspecError(f"${SIGNING_WAIT_VARIABLE} is {given!r}, {problem}; {unset}")
    if seconds > SIGNING_WAIT_MOST:
        raise DagspecError(
            f"${SIGNING_WAIT_VARIABLE} is {given!r}, more than the most a signer may take "
            f"(24h): set it to 24h or less, {unset}"
        )
    return seconds


def _signed(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """``run(cwd, *args)`` of a command that signs: bounded by :func:`signing_wait`
    (``SignerTimedOut``), ended by :func:`stop_signers` (``SigningStopped``), and
    ``LockedSigningKey`` (what to do, in one line) when the key needs a passphrase, or may
    (git says only "gpg failed to sign the data", whatever gpg said)."""
    wait = signing_wait()
    try:
        with _SIGNERS.watch() as started:
            return run(cwd, *args, env=env, timeout=wait, started=started)
    except GitError as exc:
        form = run(cwd, "config", "--get", "gpg.format", check=False).strip() or "openpgp"
        key = run(cwd, "config", "--get", "user.signingkey", check=False).strip()
        if exc.returncode == TIMED_OUT and STOPPED in exc.stderr:
            raise SignerTimedOut(exc, key, form, waited=wait) from None
        sure = bool(_NEEDS_PASSPHRASE.search(exc.stderr))
        if not sure and (form == "ssh" or _GPG_FAILED not in exc.stderr):
            raise
        raise LockedSigningKey(exc, key, form, sure=sure) from None


class _Signers:
    """The process groups of the signing gits running now, so that a second Ctrl-C ends
    them (``stop``) where it would wait up to :func:`signing_wait` for each."""

    def __init__(self) -> None:
        # Reentrant: ``stop`` may run in a signal handler (``faults.signals_deferred``), in
        # the thread of a signing git that holds the lock in ``started``.
        self.lock = threading.RLock()
        self.groups: set[int] = set()
        self.stopped = False

    @contextlib.contextmanager
    def watch(self) -> Iterator[Callable[[int], None]]:
        """Around one signing git: what ``git.run`` calls with its group as it starts.
        Raises ``SigningStopped`` instead of starting one, or after one ended, once
        stopped; then SIGKILLs what of its group outlived it (a signer deaf to SIGTERM)."""
        if self.stopped:
            raise SigningStopped
        group: list[int] = []

        def started(pgid: int) -> None:
            with self.lock:
                group.append(pgid)
                self.groups.add(pgid)
                if self.stopped:  # stopped as it started: ``stop`` did not see it
                    self._end({pgid})

        try:
            yield started
        except GitError:
            if self.stopped:
                raise SigningStopped from None
            raise
        finally:
            with self.lock:
                self.groups.difference_update(group)
                if self.stopped and group:
                    procgroup.signal_group(group[0], signal.SIGKILL)

    def stop(self) -> None:
        """End every signing git and start none: SIGTERM (git removes its temporary files),
        then SIGKILL after :data:`_STOP_GRACE` (``_end``)."""
        with self.lock:
            self.stopped = True
            self._end(set(self.groups))

    def _end(self, groups: set[int]) -> None:
        """SIGTERM ``groups`` now and SIGKILL those still running a signing git after
        :data:`_STOP_GRACE` seconds, from a timer thread: ``stop`` runs in a signal handler,
        which must not wait, and the thread of each git waits in ``communicate`` for as long
        as a signer deaf to SIGTERM holds git's pipes (its group's SIGKILL in ``watch``
        came only after that, so a second Ctrl-C waited for the signer)."""
        if not groups:
            return
        for pgid in groups:
            procgroup.signal_group(pgid, signal.SIGTERM)
        timer = threading.Timer(_STOP_GRACE, self._kill, (groups,))
        timer.daemon = True
        timer.start()

    def _kill(self, groups: set[int]) -> None:
        """SIGKILL those of ``groups`` whose git has not returned yet (``watch`` forgets a
        group as its git returns: a group gone may name a stranger's since)."""
        with self.lock:
            for pgid in groups & self.groups:
                procgroup.signal_group(pgid, signal.SIGKILL)


# Seconds a stopped signing git has to end at SIGTERM (removing its temporary files) before
# its group is killed; as ``dagspec.git.end_group`` gives a git that outlived its wait.
_STOP_GRACE = 2.0


_SIGNERS = _Signers()


def stop_signers() -> None:
    """End every signing git running now, and fail every later one at once
    (``SigningStopped``) until :func:`stoppable_signers` ends: a second Ctrl-C."""
    _SIGNERS.stop()


@contextlib.contextmanager
def stoppable_signers() -> Iterator[None]:
    """A drive's or a merge's time, in which :func:`stop_signers` may be called (at a second
    signal); signing works again after it."""
    _SIGNERS.stopped = False
    try:
        yield
    finally:
        _SIGNERS.stopped = False


_PREDICTING = contextvars.ContextVar("predicting", default=False)

# Who makes a dry run's commits: objects nobody sees (unreachable, pruned by ``git gc``),
# made only to chain the next merge on; a repository with no identity can still predict.
_PREDICTION_IDENTITY = {
    f"GIT_{who}_{what}": value
    for who in ("AUTHOR", "COMMITTER")
    for what, value in (("NAME", "dagspec dry run"), ("EMAIL", "dry-run@dagspec.invalid"))
}


@contextlib.contextmanager
def predicting() -> Iterator[None]:
    """A dry run's time (``dag merge --dry-run``): :func:`commit_tree` signs nothing (no
    signer runs, asks for a touch or logs a signature for a merge that is never made) and
    needs no identity of the user's (:data:`_PREDICTION_IDENTITY`)."""
    token = _PREDICTING.set(True)
    try:
        yield
    finally:
        _PREDICTING.reset(token)


def commit_tree(
    repo: Path,
    tree: str,
    parents: Sequence[str],
    message: str,
    *,
    sign: bool = False,
    env: Mapping[str, str] | None = None,
) -> str:
    """A new commit object of ``tree`` with ``parents`` (no ref moves); signed with the
    user's key and format (``user.signingKey``, ``gpg.format``) when ``sign``, never
    while :func:`predicting`."""
    if _PREDICTING.get():
        sign, env = False, {**_PREDICTION_IDENTITY, **(env or {})}
    flags = [arg for parent in parents for arg in ("-p", parent)]
    args = ("commit-tree", _sign_flag(sign), tree, *flags, "-m", message)
    return (_signed(repo, *args, env=env) if sign else run(repo, *args, env=env)).strip()


def commit_all(
    worktree: Path, message: str, *, sign: bool = False, identity: Mapping[str, str] | None = None
) -> bool:
    """Commit every change and untracked, not ignored file; False when there was nothing.

    No hook runs: the user's commit hooks are for the user's own commits; the agent's work
    is reviewed when it is merged. ``sign``: sign it (``-S``), as ``signs_commits`` says;
    ``identity``: who commits (``identity_env``). ``--sparse``: in a sparse checkout (a
    worktree inherits the main checkout's cone) the agent's files outside the cone are
    added too, where plain ``add -A`` refused them all.
    """
    run(worktree, "add", "-A", "--sparse")
    try:
        args = ("commit", "--quiet", "--no-verify", _sign_flag(sign), "-m", message)
        if sign:
            _signed(worktree, *args, env=identity)
        else:
            run(worktree, *args, env=identity)
    except GitError:
        if ok(worktree, "diff", "--cached", "--quiet"):
            return False  # nothing was staged: asked only when the commit failed
        raise
    return True


def try_signing(repo: Path) -> str | None:
    """Sign a commit object of the empty tree, as dagspec signs its merges; None when it
    worked, else what git said; ``LockedSigningKey`` when the key needs a passphrase,
    ``SignerTimedOut`` when the signer did not answer in time. Writes only unreachable
    objects (pruned by ``git gc``)."""
    tree = run(repo, "mktree").strip()
    try:
        commit_tree(repo, tree, (), "dagspec: can git sign here?", sign=True)
    except (LockedSigningKey, SignerTimedOut):
        raise
    except GitError as exc:
        return (exc.stderr or str(exc)).strip()
    return None
