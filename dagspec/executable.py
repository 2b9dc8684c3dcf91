"""The autospec executable: where it is, and which version it is.

The contract differs between autospec versions (docs/autospec-contract.md), so a run
records the version it was started with.
"""

from __future__ import annotations

import errno
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs

from dagspec import procgroup
from dagspec.autospec import version_line, version_problem
from dagspec.errors import DagspecError, as_typed, quoted, too_many_open_files


def find_autospec(given: str | None) -> str:
    """The autospec executable: ``--autospec``, else ``$DAGSPEC_AUTOSPEC``, else PATH."""
    from_env = os.environ.get("DAGSPEC_AUTOSPEC")
    name = given or from_env or "autospec"
    source = "--autospec" if given else "$DAGSPEC_AUTOSPEC" if from_env else "PATH"
    found = _located(name)
    if found is None:
        raise DagspecError(
            f"the autospec executable '{name}' (from {source}) was not found or is not "
            "executable: install autospec, or name it with --autospec or $DAGSPEC_AUTOSPEC"
        )
    return found


def find_run_autospec(
    given: str | None, recorded: str | None, *, run_id: str, again: str, used: str | None = None
) -> str:
    """The autospec executable of a ``resume`` or ``retry`` of run ``run_id``: ``given``
    (their ``--autospec``), else ``recorded`` (the run's own, which comes before
    ``$DAGSPEC_AUTOSPEC``), else as ``find_autospec``, else ``used``, the one the run last
    ran (``RunState.autospec``: a new shell has lost the ``$DAGSPEC_AUTOSPEC`` the run was
    started with) when there is no ``$DAGSPEC_AUTOSPEC`` (one that names what is not there
    is a mistake to be told of), with a note on stderr saying so. Raises ``DagspecError``
    when none is there; for the recorded one, saying it is the run's and to type ``again``
    (the command, ``dag retry r a``) with ``--autospec``: the demo's, deleted with its
    directory."""
    if given is not None or recorded is None:
        try:
            return find_autospec(given)
        except DagspecError as exc:
            if given is not None or used is None:
                raise
            last = _located(used)
            if last is None or os.environ.get("DAGSPEC_AUTOSPEC"):  # it names one: that one
                raise DagspecError(f"{exc}; run '{run_id}' {_used_last(used, again)}") from None
            print(
                as_typed(
                    f"note: no autospec on PATH and no $DAGSPEC_AUTOSPEC: using {last}, the "
                    f"one run '{run_id}' last ran (`{again} --autospec CMD` names another)"
                ),
                file=sys.stderr,
            )
            return last
    found = _located(recorded)
    if found is not None:
        return found
    shown, why = f"'{recorded}'", "was not found or is not executable"
    if _found_as(recorded, used):  # a name PATH had then: the file it was found as
        assert used is not None
        if (last := _located(used)) is not None:
            print(
                as_typed(
                    f"note: '{recorded}' is not on PATH: using {last}, the file run "
                    f"'{run_id}' found it as (`{again} --autospec CMD` names another)"
                ),
                file=sys.stderr,
            )
            return last
        shown, why = f"{shown} (found as {used})", _unusable(used)
    elif os.sep in recorded:
        why = _unusable(recorded)
    raise DagspecError(
        f"the autospec executable {shown} that run '{run_id}' recorded (it was started "
        f"with --autospec) {why}: name the one to use now with `{again} --autospec CMD` "
        "(it is recorded in turn; $DAGSPEC_AUTOSPEC does not replace a recorded one)"
    )


def _found_as(name: str, used: str | None) -> bool:
    """Whether ``used``, the autospec a run last ran, is the file the bare ``name`` it
    recorded (``--autospec NAME``) was found as on PATH: a new shell may lack that PATH."""
    return used is not None and os.sep not in name and Path(used).name == name


def _unusable(path: str) -> str:
    """Why the file ``path`` cannot be run: gone, or there but not an executable file."""
    where = Path(path).expanduser()
    if where.is_file():
        return f"is not executable (`chmod +x {shlex.quote(path)}` makes it so)"
    return "is not a file" if where.exists() else "is gone"


def _used_last(used: str, again: str) -> str:
    """What to say of ``used``, the autospec a run last ran, when it cannot stand in."""
    if _located(used) is None:
        why = _unusable(used).replace("is gone", "is gone too")
        return f"last used {used}, which {why}: name one with `{again} --autospec CMD`"
    return f"last used {used}: use it again with `{again} --autospec {shlex.quote(used)}`"


def _located(name: str) -> str | None:
    """``name`` as an executable file: a path with a ``/`` as it is, else found on PATH."""
    if os.sep in name:
        candidate = Path(name).expanduser().absolute()
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    found = shutil.which(name)
    return str(Path(found).absolute()) if found is not None else None  # PATH may hold "."


def autospec_version(executable: str, *, cwd: Path | None = None) -> str:
    """The line ``autospec --version`` prints that names autospec's version (``autospec
    version v0.7.3``: ``autospec.version_line``), asked in ``cwd`` (the repository: dag's own
    directory may be gone); the contract differs between versions. Raises
    ``DagspecError``, one line quoting what it printed, when that is not one: it could not
    start, did not answer within ``_VERSION_TIMEOUT`` seconds, printed more than
    ``_VERSION_BYTES`` (it is stopped then, with whatever it started), failed, printed
    nothing, nothing naming autospec, or a line dagspec cannot read as a version
    (``autospec.version_problem``: not UTF-8, a control character, ``v-1.0.0``...)."""
    answer = _ask(executable, cwd)
    text = answer.out.decode("utf-8", "surrogateescape")
    line = version_line(text) if answer.code == 0 else None
    problem = version_problem(line) if line is not None else None
    if line is not None and problem is None:
        return line
    what = f"printed {quoted(line)}, {problem}" if line and problem else _what_it_did(answer, text)
    raise DagspecError(
        f"`{executable} --version` {what}: is it autospec? Name the right one with --autospec"
    )


_VERSION_TIMEOUT = 10.0  # seconds for ``autospec --version`` to answer
_VERSION_BYTES = 64 * 1024  # what its answer may print, on stdout and on stderr each
_SHOWN = 200  # characters of an answer shown at most
_PROBE = "DAGSPEC_VERSION_PROBE"  # in the environment of ``--version`` and all it starts


@attrs.frozen
class _Answer:
    """How ``--version`` ended: its exit code (negative: the signal; None: it was stopped,
    for ``stopped``), and what it printed."""

    code: int | None
    out: bytes
    err: bytes
    stopped: str | None = None  # why it was stopped: "did not answer in 10 s"


def _what_it_did(answer: _Answer, text: str) -> str:
    """What a ``--version`` answer that names no autospec version did, in a few words,
    quoting what it printed."""
    said = answer.err.decode("utf-8", "surrogateescape").strip().splitlines()
    last = f" ({_shown(said[-1])})" if said else ""
    shown = [line for line in text.splitlines() if line.strip()]
    if answer.stopped is not None:
        before = f"{_shown(shown[0])} on stdout" if shown else "nothing on stdout"
        before += f", {_shown(said[-1])} on stderr" if said else ""
        return f"{answer.stopped} (it had printed {before})"
    if answer.code is not None and answer.code < 0:
        return f"was killed by {procgroup.signal_name(-answer.code)}{last}"
    if answer.code != 0:
        return f"failed with exit code {answer.code}{last}"
    if not shown:
        on_stderr = f"; on stderr: {_shown(said[-1])}" if said else ""
        return f"printed no version (it exited 0 with nothing on stdout{on_stderr})"
    return f"printed {_shown(shown[0])}, which names no autospec version"


def _shown(text: str) -> str:
    """``text`` quoted as one short printable line (it may have come from anything)."""
    return quoted(text.strip(), _SHOWN)


def _ask(executable: str, cwd: Path | None) -> _Answer:
    """Run ``executable --version`` in a session of its own, reading at most
    ``_VERSION_BYTES`` of each stream for at most ``_VERSION_TIMEOUT`` seconds; then it and
    whatever it started are killed (a child left holding its output would otherwise keep
    it from ending), even what left its session (``setsid``): found by the marker
    ``_PROBE`` in its environment, as ``agent`` finds an agent's. Raises ``DagspecError``
    when it cannot be started."""
    marker = f"{os.getpid()}-{time.monotonic_ns()}"
    try:
        process = subprocess.Popen(
            [executable, "--version"],
            cwd=cwd,
            env={**os.environ, _PROBE: marker},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise DagspecError(
            f"{start_failure(executable, exc)}; name another with --autospec"
        ) from None
    with process:
        assert process.stdout is not None and process.stderr is not None
        read = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
        try:
            stopped = _read(read, time.monotonic() + _VERSION_TIMEOUT, process)
        finally:
            procgroup.signal_group(process.pid, signal.SIGKILL)  # done or not: nothing stays
            process.wait()
            _end_marked(marker)
        out, err = (bytes(data) for data in read.values())
    return _Answer(None if stopped else process.returncode, out, err, stopped)


def _end_marked(marker: str) -> None:
    """SIGKILL every process group holding a process with ``_PROBE=marker`` in its
    environment, until none is left (one may fork between the look and the kill)."""
    for _ in range(100):
        groups = procgroup.groups_by_variable(_PROBE).get(marker, set())
        if not groups:
            return
        for group in groups:
            procgroup.signal_group(group, signal.SIGKILL)


def _read(
    read: dict[int, bytearray], deadline: float, process: subprocess.Popen[bytes]
) -> str | None:
    """Read each stream of ``read`` into its buffer until both end, or the process has
    exited and they are empty (what it started holds them open); else why it was stopped
    (too long, too much)."""
    open_ = list(read)
    while open_:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"did not answer in {_VERSION_TIMEOUT:g} s"
        ready = select.select(open_, [], [], min(left, 0.05))[0]
        if not ready and process.poll() is not None:
            return None
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_.remove(fd)
            read[fd] += data
            if len(read[fd]) > _VERSION_BYTES:
                return f"printed more than {_VERSION_BYTES // 1024} KiB without ending"
    return None


def start_failure(
    program: str, exc: OSError, *, path: str | None = None, cwd: Path | None = None
) -> str:
    """Why ``program`` (a path, or a name looked up in ``path``, else ``$PATH``) could not
    be started in ``cwd``, as one line, from the ``OSError`` of its ``exec``. The kernel says ENOENT
    both for a missing file and for a script whose ``#!`` interpreter is missing
    (execve(2): "the interpreter of a script ... does not exist"), and ENOEXEC for a file it
    cannot run: the script's first line says which it was."""
    if too_many := too_many_open_files(exc, program):
        return too_many
    if cwd is not None and not cwd.is_dir():
        return f"{program} could not be started: its directory {cwd} is gone"
    found = program if os.sep in program else shutil.which(program, path=path)
    if found is not None and Path(found).is_file():
        if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC):
            interpreter = shebang_interpreter(Path(found))
            if interpreter is not None and not _runnable(interpreter):
                shown = interpreter if interpreter.isprintable() else repr(interpreter)
                return f"{found}: bad interpreter {shown} (from its #! line)"
        if exc.errno == errno.ENOEXEC:
            return f"{found}: not a program this machine can run (no #! line, or built for another)"
    return f"{found or program} could not be started: {exc.strerror or exc}"


_SHEBANG_MAX = 256
"""Bytes of a script's first line the kernel reads for ``#!`` (``BINPRM_BUF_SIZE``)."""


def shebang_interpreter(script: Path) -> str | None:
    """The interpreter a script's ``#!`` line names (what the kernel runs it with: the first
    word, spaces and tabs around it dropped, a carriage return kept), or None when the
    file has no ``#!`` line or cannot be read."""
    try:
        with script.open("rb") as file:
            head = file.read(_SHEBANG_MAX)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].lstrip(b" \t")
    word = line.replace(b"\t", b" ").split(b" ", 1)[0]
    return os.fsdecode(word) if word else None


def _runnable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)
