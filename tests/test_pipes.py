"""Output into a pipe whose reader has gone (``dag status | head -1``): no traceback, exit 1.

The reader is a real ``head -1``, or a pipe closed before ``dag`` writes. For ``head``, the
pipe is shrunk to one page and the output is several times what the pipe and ``head``'s
one read can hold, so ``dag`` is still writing when ``head`` leaves: the pipe breaks every
time, not only when the scheduler says so.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dagspec.lifecycle import RunStatus, SpecStatus
from tests.conftest import ROOT
from tests.run_states import at, run, save, spec

pytestmark = pytest.mark.slow  # each test starts dag as a process

PAGE = 4096  # the smallest pipe Linux makes; head -1 reads at most a few pages at once


def _dag(*args: str) -> list[str]:
    return [sys.executable, "-m", "dagspec", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def big_run(git_repo: Path) -> Path:
    """A saved run of 1,000 specs (its status is about 30 KB, 500 KB as JSON), a 450 KB log
    and a few more runs."""
    specs = [spec(f"spec-{i:04d}", SpecStatus.COMPLETED, error="x" * 40) for i in range(1000)]
    save(run(git_repo, "big", *specs, started_at=at(3600)))
    for index in range(3):
        save(run(git_repo, f"run-{index}", spec("a"), status=RunStatus.FAILED))
    log = git_repo / ".autospec" / "state" / "dag-runs" / "big" / "logs" / "spec-0000.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"a line of agent output\n" * 20_000)
    return git_repo


@pytest.mark.parametrize(
    "args",
    [("status", "big"), ("status", "big", "--json"), ("logs", "big", "spec-0000")],
    ids=" ".join,
)
def test_into_head(big_run: Path, args: tuple[str, ...]) -> None:
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PAGE)
    with subprocess.Popen(
        _dag(*args),
        cwd=big_run,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=subprocess.PIPE,
    ) as dag:
        os.close(write_end)
        head = subprocess.run(["head", "-1"], stdin=read_end, capture_output=True, check=True)
        os.close(read_end)  # head was the only reader; it has left
        assert dag.stderr is not None
        err = dag.stderr.read()
        assert dag.wait(timeout=30) == 1, err
    assert err == b""
    assert head.stdout.count(b"\n") == 1


@pytest.mark.parametrize(
    "args", [("list",), ("list", "--json"), ("visualize", "FILE")], ids=" ".join
)
def test_into_a_closed_pipe(big_run: Path, args: tuple[str, ...]) -> None:
    args = tuple(str(ROOT / "fixtures/dags/example.yaml") if a == "FILE" else a for a in args)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            _dag(*args), cwd=big_run, env=_env(), stdout=write_end, stderr=subprocess.PIPE
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, b"")
