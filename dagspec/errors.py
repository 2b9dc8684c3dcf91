"""The user-facing error types; each carries the evidence its message is built from."""

from __future__ import annotations

import contextlib
import errno
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from dagspec import git_said

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 3  # a bug in dagspec itself; the message names the crash log
EXIT_INTERRUPTED = 130


def too_many_open_files(exc: OSError, opened: str | None = None) -> str | None:
    """What to do when ``exc`` is EMFILE (this process's open-file limit) or ENFILE (the
    system's), opening ``opened`` (default: the error's file name); None for any other
    error. The run's limit, not the file's fault: every place that opens says the same."""
    if exc.errno not in (errno.EMFILE, errno.ENFILE):
        return None
    name = opened or exc.filename
    what = f"opening {name}" if name else "opening a file or pipe for it"
    limit = "the open-file limit (ulimit -n)"
    if exc.errno == errno.ENFILE:
        limit = "the system's open-file limit (fs.file-max)"
    return (
        f"too many open files while {what} ({errno.errorcode[exc.errno]}): "
        f"raise {limit} or lower --max-parallel, then `dag retry`"
    )


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """An ``OSError`` inside names ``path`` when the system call did not: a write or a
    close (a full disk, the file size limit) names no file, and the one line that tells the
    user about it must (``faults.spec_reason``)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


# Control characters and line separators a message may quote from a user's file: shown
# escaped, so that they neither act on the terminal nor break the one-line-per-error rule.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(line: str) -> str:
    return _UNPRINTABLE.sub(lambda match: repr(match[0])[1:-1], line)


def as_typed(message: str) -> str:
    """Hints say `dag ...`; say instead the form that works when ``dag`` is not it
    (``python3 /abs/dag.pyz``: ``console.dag_command``)."""
    if "`dag " not in message:
        return message
    import re

    from dagspec.console import dag_command  # only on this path: errors is imported early

    forms = {"": dag_command(), "--repo ": dag_command(repo=False)}  # a hint's own --repo wins
    return re.sub(r"`dag (--repo )?", lambda m: f"`{forms[m[1] or '']} {m[1] or ''}", message)


def print_error(message: str) -> None:
    """Print ``message`` to stderr with every line as ``dag: error: <line>``, so that
    scripts and hooks can pick out each line. The one place that spells the prefix."""
    lines = [_printable(line.rstrip()) for line in as_typed(str(message)).strip("\n").split("\n")]
    sys.stderr.write("".join(f"dag: error: {line}\n" for line in lines))
    sys.stderr.flush()


def print_warning(message: str) -> None:
    """Print ``message`` to stderr as ``dag: warning: <message>``, a `dag ...` it suggests in
    the form the user types (``as_typed``), as errors are. The one place that spells it."""
    print(f"dag: warning: {as_typed(message)}", file=sys.stderr)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, else ``""``."""
    import difflib  # here: `dag --version` imports this module and must start fast

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class DagspecError(Exception):
    """Anything a user can cause: printed as ``dag: error: <message>``, exit 1."""


class Problem(NamedTuple):
    """One thing wrong with a DAG file, at a place a user can open.

    (A NamedTuple, not attrs: ``cli`` imports this module, and ``dag --version`` must
    start without importing attrs.)
    """

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        """``file:line: message``, one line: a line break the message quotes from the file
        (``"a\\nb"`` as an id) is shown as ``\\n``."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}".replace("\r", "\\r").replace("\n", "\\n")


class SpecError(DagspecError):
    """The DAG file is invalid; carries every problem found in one pass."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class GitError(DagspecError):
    """A git command failed, or answered in a shape dagspec cannot read (``GitOutputError``);
    keeps the command, what it printed, and what to do (``hint``, a last line) when dagspec
    knows."""

    def __init__(
        self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str, *, hint: str = ""
    ) -> None:
        self.cmd = tuple(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.hint = hint
        super().__init__(self._message())

    def _message(self) -> str:
        """One line (README, Errors): the command, git's gist (``git_said.gist``: the
        rest of what it said is what it always says), the lock file in its way, the hint."""
        said = (self.stderr or self.stdout).strip()
        text = f"`{shown_command(self.cmd)}` failed with exit code {self.returncode}"
        if self.returncode == 0:  # git said the fault on stderr only
            text = f"`{shown_command(self.cmd)}` exited 0 but reported a fault"
        if gist := git_said.gist(said):
            text += f": {gist}"
        elif room := git_said.no_room(self.returncode, said):  # killed: SIGXFSZ
            text += f": {room}"
        if lock := git_said.lock_in_the_way(said):
            text += f" ({git_said.lock_advice(lock)})"
        return text + (f"; {self.hint}" if self.hint else "")


def shown_command(cmd: Sequence[str]) -> str:
    """``cmd`` on one line: an argument of several lines (a commit message given with
    ``-m``) is shown as its first line and an ellipsis, so a failed git's error stays one
    line (README, Errors)."""
    return " ".join(
        arg.strip().split("\n", 1)[0] + " …" if "\n" in arg.strip() else arg for arg in cmd
    )


class LockedSigningKey(GitError):
    """A signing git failed because the key needs a passphrase (or kept waiting for one),
    or, when not ``sure``, gpg failed and git does not say why: dagspec's git never asks
    for a passphrase, so this says, in one line, how to unlock the key."""

    def __init__(self, failed: GitError, key: str, form: str, *, sure: bool = True) -> None:
        self.key = key
        self.form = form  # gpg.format: openpgp, x509 or ssh
        self.sure = sure
        super().__init__(failed.cmd, failed.returncode, failed.stdout, failed.stderr)

    def _message(self) -> str:
        shown = f"signing key {self.key}" if self.key else "signing key"
        if self.sure:
            return (
                f"the {shown} needs a passphrase, and dagspec never asks for one: "
                f"{self._unlock()}, then try again"
            )
        return (
            f"git could not sign with the {shown} (gpg failed, and git does not say why): "
            f"if the key needs a passphrase (dagspec never asks for one), {self._unlock()}, "
            "then try again; else fix user.signingKey (try `git commit --allow-empty -S -m test`)"
        )

    def _unlock(self) -> str:
        return _unlock(self.form, self.key)


def _unlock(form: str, key: str) -> str:
    """How to make ``key`` (of ``gpg.format`` ``form``) sign with no one to ask."""
    if form == "ssh":
        literal = key.startswith(("key::", "ssh-")) or not key
        private = "KEY" if literal else key.removesuffix(".pub")
        return f"load it into ssh-agent (`ssh-add {private}`)"
    tool = "gpgsm" if form == "x509" else "gpg"
    who = f" --local-user {key}" if key else ""
    return f"unlock it in gpg-agent (`echo | {tool} --sign{who} >/dev/null` asks once)"


SIGNING_WAIT_VARIABLE = "DAGSPEC_SIGNING_WAIT"  # seconds a signer may take (git_commit)


class SignerTimedOut(GitError):
    """A signing git whose signer had not answered after ``waited`` seconds, stopped: a
    hardware key waiting for a touch, a passphrase window on a display no one watches.
    Not known to be a locked key: says what happened, the longer wait
    (``$DAGSPEC_SIGNING_WAIT``) and how to sign with no one to ask."""

    def __init__(self, failed: GitError, key: str, form: str, *, waited: float) -> None:
        self.key, self.form, self.waited = key, form, waited
        super().__init__(failed.cmd, failed.returncode, failed.stdout, failed.stderr)

    def _message(self) -> str:
        shown = f"signing key {self.key}" if self.key else "signing key"
        return (
            f"the signer of the {shown} did not answer within {self.waited:g} s, so dagspec "
            "stopped it (a hardware key waiting for a touch? a passphrase window no one saw?): "
            f"give it longer (`export {SIGNING_WAIT_VARIABLE}=5m`) and touch the key when it "
            f"asks, or {_unlock(self.form, self.key)} so that it needs no one, then try again"
        )


class WaitStopped(DagspecError):
    """A wait for another process's ``flock`` (another run of the repository) ended at the
    user's request (Ctrl-C) before the lock was taken: nothing was done under it."""


class SigningStopped(DagspecError):
    """A signing git ended at the user's request (a second Ctrl-C) before it signed:
    nothing was committed."""

    def __init__(self) -> None:
        super().__init__(
            "dagspec stopped git's signer at a second Ctrl-C, before the commit was signed: "
            "nothing was committed"
        )


class Interrupted(KeyboardInterrupt):
    """An interrupt (exit 130) that says in one line what it left, in place of a bare
    ``dag: interrupted``: ``error``, as ``dag: error: ...``, when what was asked was not
    done; else ``dag: interrupted: ...``."""

    def __init__(self, said: str, *, error: bool = False) -> None:
        super().__init__(said)
        self.said, self.error = said, error

    def say(self) -> None:
        if self.error:
            print_error(self.said)
        else:
            print(f"dag: interrupted: {as_typed(self.said)}", file=sys.stderr)


class GitOutputError(GitError):
    """git succeeded but printed what dagspec cannot read (another git's output, a setting
    dagspec does not override): keeps the command, all it printed (``stdout``), the piece
    that is not as expected (``item``) and what was (``expected``), so the message names
    what git printed rather than a traceback of the parse, or a misread."""

    def __init__(self, cmd: Sequence[str], stdout: str, item: str, expected: str) -> None:
        self.item, self.expected = item, expected
        super().__init__(cmd, 0, stdout, "")

    def _message(self) -> str:
        return (
            f"`{shown_command(self.cmd)}` printed {quoted(self.item)} where dagspec expects "
            f"{self.expected}: please report it, with what `git --version` says"
        )


_QUOTED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff'\\\\]")


def quoted(text: str, limit: int = 200) -> str:
    """``text`` in single quotes, one printable line: control characters, line separators,
    quotes and backslashes escaped as Python writes them, a byte that is not UTF-8 (decoded
    with ``surrogateescape``) as ``\\xNN``; at most ``limit`` characters, then ``...``.

    >>> print(quoted("a\\nb'\\udcff"))
    'a\\nb\\'\\xff'
    """

    def escape(match: re.Match[str]) -> str:
        char = match[0]
        if "\udc80" <= char <= "\udcff":
            return f"\\x{ord(char) - 0xDC00:02x}"
        return "\\" + char if char in "'\\" else repr(char)[1:-1]

    cut = "..." if len(text) > limit else ""
    return "'" + _QUOTED.sub(escape, text[:limit]) + "'" + cut


class LinkLoopError(DagspecError):
    """A path leads through a loop of symbolic links (``a -> b``, ``b -> a``); keeps the
    link where the loop starts (``workspace.real_path``)."""

    def __init__(self, link: str) -> None:
        self.link = link
        super().__init__(
            f"{link} is a symbolic link that leads back to itself (a loop of links): "
            "remove it, or point it at a directory"
        )


class SetupError(DagspecError):
    """``execution.copy`` or ``execution.setup`` failed in a spec's worktree."""


class StateError(DagspecError):
    """A run's state file is missing, damaged, from a newer dagspec, or locked."""
