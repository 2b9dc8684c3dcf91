"""What the engine's tests share: a project driven by the fake autospec, DAG text, gates.

The fixtures built on these are in ``tests/engine_fixtures.py``, which the engine's test
modules load with ``pytest_plugins``.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagspec import state
from dagspec.lifecycle import RunState
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.conftest import start_dag as conftest_start_dag
from tests.fake_autospec_fixture import FakeAutospec, wait_for


def dag_text(*features: str | tuple[str, Sequence[str]], extra: str = "") -> str:
    """A one-layer DAG: each feature ``id`` or ``(id, depends_on)``, described as ``Build <id>``."""
    lines = ['dag:\n  name: "t"', extra, "layers:", '  - id: "L0"', "    features:"]
    for feature in features:
        spec_id, deps = (feature, ()) if isinstance(feature, str) else feature
        lines += [f'      - id: "{spec_id}"', f'        description: "Build {spec_id}"']
        if deps:
            lines.append(f"        depends_on: {json.dumps(list(deps))}")
    return "\n".join(line for line in lines if line) + "\n"


@dataclass(frozen=True)
class Project:
    """A repository with autospec set up, the fake on PATH, and how to look at a run."""

    repo: Path
    fake: FakeAutospec

    def write_dag(self, text: str, name: str = "dag.yaml") -> Path:
        path = self.repo / name
        path.write_text(text)
        return path

    def state(self, run_id: str = "r") -> RunState:
        return state.load(RunPaths(self.repo, run_id))

    def statuses(self, run_id: str = "r") -> dict[str, str]:
        return {s.id: s.status.value for s in self.state(run_id).specs}

    def worktree(self, spec_id: str, run_id: str = "r") -> Path:
        return self.repo.parent / f"{self.repo.name}.worktrees" / run_id / spec_id

    def starts(self, spec_description: str | None = None) -> list[dict[str, Any]]:
        """The fake's ``start`` records, optionally of one spec (by its description)."""
        records = self.fake.events("start")
        if spec_description is None:
            return records
        return [r for r in records if r.get("description") == spec_description]

    def stages(self, spec_id: str, run_id: str = "r") -> list[str]:
        """Every stage the fake ran for ``spec_id`` (described as ``Build <id>``, or working
        in the spec's directory), in order, repeats kept."""
        spec_dir = Path(self.state(run_id).spec(spec_id).spec_dir or "").name
        records = self.fake.events()
        pids = {
            r["pid"]
            for r in records
            if _describes(r, f"Build {spec_id}") or (spec_dir and r.get("spec") == spec_dir)
        }
        return [r["stage"] for r in records if r["event"] == "stage_start" and r["pid"] in pids]


def _describes(record: dict[str, Any], description: str) -> bool:
    return record.get("description") == description or description in record.get("argv", [])


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").split()


# --- gates ---------------------------------------------------------------------------------


HOLD = 120.0
"""Seconds a gate waits for its fakes, and stays open after: a cap for a test that fails,
never a wait for an order. It counts from ``hold``, before ``dag`` starts: 20 s was passed
by a fail-fast run under heavy load (two cores busy), which then failed its ``check``."""


class Gatekeeper:
    """Answers the fake's gates from a thread while the test's main thread runs ``dag``.

    ``hold(step, count)`` waits until ``count`` fakes wait at ``step`` (proving they run at
    the same time), then lets them all go. If that never happens the gates are opened
    anyway, so the run ends, and ``check()`` fails the test with what was seen.
    """

    def __init__(self, gate_dir: Path) -> None:
        self.gate_dir = gate_dir
        self.errors: list[str] = []
        self.seen: dict[str, list[str]] = {}
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    def waiting(self, step: str) -> list[str]:
        if not self.gate_dir.is_dir():
            return []
        suffix = f".{step}.waiting"
        return sorted(p.name[: -len(suffix)] for p in self.gate_dir.glob(f"*{suffix}"))

    def release(self, name: str, step: str) -> None:
        (self.gate_dir / f"{name}.{step}.waiting").unlink(missing_ok=True)
        go = self.gate_dir / f"{name}.{step}.go"
        go.with_suffix(".tmp").write_text("go\n")
        go.with_suffix(".tmp").replace(go)

    def hold(self, step: str, count: int, *, then: Callable[[], None] | None = None) -> None:
        def keep() -> None:
            try:
                wait_for(lambda: len(self.waiting(step)) >= count, timeout=HOLD, what=step)
                self.seen[step] = self.waiting(step)
            except TimeoutError:
                self.errors.append(f"never {count} at {step}: saw {self.waiting(step)}")
            if then is not None:
                try:
                    then()
                except Exception as exc:  # said by check(); the gates open all the same
                    self.errors.append(f"after {step}: {exc!r}")
            self._open(step, until=time.monotonic() + HOLD)

        thread = threading.Thread(target=keep, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _open(self, step: str, *, until: float) -> None:
        """Release whoever waits at ``step`` (now or later) until the run is over."""
        while time.monotonic() < until and not self._closed.is_set():
            for name in self.waiting(step):
                self.release(name, step)
            self._closed.wait(0.005)

    def close(self) -> None:
        self._closed.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def check(self) -> None:
        """After the run: every ``hold`` saw what it waited for."""
        self.close()
        assert self.errors == [], self.errors


# --- dag in a separate process ---------------------------------------------------------------


def start_dag(repo: Path, *args: str) -> subprocess.Popen[str]:
    """The dag of conftest, text mode."""
    return conftest_start_dag(repo, *args)


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def group_alive(pgid: int) -> list[int]:
    """The live processes of group ``pgid`` (from /proc)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(entry.name))
    return alive
