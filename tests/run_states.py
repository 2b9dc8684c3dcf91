"""For the tests of the commands that read runs: states built directly, saved where
``dag`` looks, and the output of a ``dag`` subprocess read with a deadline."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagspec import state
from dagspec.lifecycle import RunState, RunStatus, SpecState, SpecStatus
from dagspec.workspace import RunPaths, branch_name
from tests.conftest import start_dag as conftest_start_dag

T0 = datetime(2026, 11, 24, 10, 15, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``: every test clock starts at the same instant."""
    return datetime.fromtimestamp(T0.timestamp() + seconds, UTC)


def spec(spec_id: str, status: SpecStatus = SpecStatus.PENDING, **fields: Any) -> SpecState:
    return SpecState(id=spec_id, layer=fields.pop("layer", "L0"), status=status, **fields)


def run(
    repo: Path,
    run_id: str,
    *specs: SpecState,
    status: RunStatus = RunStatus.COMPLETED,
    started_at: datetime = T0,
    **fields: Any,
) -> RunState:
    """A run of ``repo``; a running one is driven by this test process unless told otherwise."""
    if status is RunStatus.RUNNING:
        fields.setdefault("driver_pid", os.getpid())
    return RunState(
        format=state.FORMAT,
        run_id=run_id,
        dag_file="dag.yaml",
        dag_name="demo",
        repo=str(repo),
        status=status,
        base_branch="main",
        base_commit=fields.pop("base_commit", "0" * 40),  # no such commit, unless told
        started_at=started_at,
        specs=specs,
        **fields,
    )


def save(value: RunState) -> RunPaths:
    """Write the run's state file where ``dag`` looks for it. A run driven by this test
    process is locked by it, as a driver locks its run (``state.driver_alive``)."""
    paths = RunPaths(Path(value.repo), value.run_id)
    state.save(value, paths.state_file)
    if value.status is RunStatus.RUNNING and value.driver_pid == os.getpid():
        _drive(paths.run_dir)
    return paths


_DRIVEN: dict[Path, int] = {}  # run directories this test process holds open, as a driver


def _drive(run_dir: Path) -> None:
    if run_dir in _DRIVEN:
        return
    while len(_DRIVEN) >= 16:  # earlier tests' runs: let them go
        os.close(_DRIVEN.pop(next(iter(_DRIVEN))))
    run_dir.mkdir(parents=True, exist_ok=True)
    _DRIVEN[run_dir] = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(_DRIVEN[run_dir], fcntl.LOCK_EX)  # as ``state.run_lock`` does


def let_go(paths: RunPaths) -> None:
    """The run's driver, this test process, ends: it lets go of the run's lock."""
    os.close(_DRIVEN.pop(paths.run_dir))


def branch(run_id: str, spec_id: str) -> str:
    return branch_name(run_id, spec_id)


class Output:
    """What a ``dag`` subprocess printed so far, read with a deadline (never a sleep)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.data = b""

    def wait_for(self, text: bytes, timeout: float = 20.0) -> None:
        """Read until ``text`` has appeared (anywhere in the output so far)."""
        deadline = time.monotonic() + timeout
        while text not in self.data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} within {timeout}s in {self.data!r}")
            if select.select([self.fd], [], [], left)[0]:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    raise AssertionError(f"the output ended before {text!r}: {self.data!r}")
                self.data += chunk

    def finish(self, timeout: float = 20.0) -> int:
        """Read to the end and return the exit code."""
        deadline = time.monotonic() + timeout
        while chunk := self._read(deadline):
            self.data += chunk
        return self.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))

    def _read(self, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.fd], [], [], left)[0]:
            self.proc.kill()
            raise AssertionError(f"still running after the deadline: {self.data!r}")
        return os.read(self.fd, 1 << 16)


def start_dag(repo: Path, *args: str) -> subprocess.Popen[bytes]:
    """The dag of conftest, bytes mode (output read raw, against a deadline)."""
    return conftest_start_dag(repo, *args, text=False)
