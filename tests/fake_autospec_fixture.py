"""The ``fake_autospec`` fixture: the stand-in autospec first on PATH, its log, control and gates.

The executable is ``fixtures/fake_autospec/autospec``; its module docstring lists every
``FAKE_AUTOSPEC_*`` knob. Tests drive it through the environment (``setenv``), through the
control file (``control``: rules re-read before every step, so one spec of a parallel batch
can be targeted, or behaviour changed mid-run), and step it deterministically with gates.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FAKE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "fake_autospec"
PREFIX = "FAKE_AUTOSPEC_"
CONSTITUTION = """\
constitution: {project_name: "demo", version: "1.0.0", ratified: "2026-01-01"}
principles:
  - {name: "Test-First", id: "PRIN-001", priority: "MUST", description: "Tests before code"}
"""


def _write_atomically(path: Path, text: str) -> None:
    """Readers (the fake polls these files) never see a half-written file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, what: str | Callable[[], str]
) -> None:
    """Poll ``predicate()`` until true; fail with ``what`` (evaluated then) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise TimeoutError(f"timed out after {timeout}s waiting for {described}")
        time.sleep(0.005)


@dataclass(frozen=True)
class GateDir:
    """The gate directory: the fake writes ``<name>.<step>.waiting``, a test answers ``.go``.

    ``name`` is the spec dir name once the fake knows it, else the fake's pid (the pid of the
    ``Popen``). The fake removes both files when it passes the gate.
    """

    path: Path

    def waiting(self, name: str | int, step: str) -> Path:
        return self.path / f"{name}.{step}.waiting"

    def wait_waiting(self, name: str | int, step: str, timeout: float = 10.0) -> dict[str, Any]:
        """Block until the fake waits at ``step``; return what it wrote (pid, step, cwd)."""
        waiting = self.waiting(name, step)
        wait_for(waiting.exists, timeout=timeout, what=lambda: f"{waiting} ({self._listing()})")
        return dict(json.loads(waiting.read_text(encoding="utf-8")))

    def wait_any(self, step: str, timeout: float = 10.0) -> str:
        """Block until some fake waits at ``step``; return its name (spec dir, else pid)."""
        suffix = f".{step}.waiting"
        found: list[str] = []

        def present() -> bool:
            found[:] = (
                sorted(p.name for p in self.path.glob(f"*{suffix}")) if self.path.is_dir() else []
            )
            return bool(found)

        wait_for(present, timeout=timeout, what=lambda: f"any *{suffix} ({self._listing()})")
        return found[0].removesuffix(suffix)

    def release(self, name: str | int, step: str) -> None:
        """Let the fake pass ``step`` (or pass it at once, when released in advance)."""
        self.waiting(name, step).unlink(missing_ok=True)
        _write_atomically(self.path / f"{name}.{step}.go", "go\n")

    def _listing(self) -> str:
        names = sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []
        return "present: " + (", ".join(names) or "nothing")


@dataclass(frozen=True)
class FakeAutospec:
    """Handle on the fake autospec of one test: where it is, what it logged, how to steer it."""

    path: Path
    log_path: Path
    control_path: Path
    gate_dir: GateDir
    monkeypatch: pytest.MonkeyPatch

    def setenv(self, key: str, value: str | int | float | bool) -> None:
        """Set one knob, e.g. ``setenv("FAIL_AT", "plan")`` (the prefix is optional)."""
        name = key if key.startswith(PREFIX) else PREFIX + key
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        self.monkeypatch.setenv(name, text)

    def control(self, rules: list[Mapping[str, Any]]) -> Path:
        """Write the control file (atomically) and point the fake at it."""
        _write_atomically(self.control_path, json.dumps(list(map(dict, rules)), indent=2))
        self.monkeypatch.setenv(PREFIX + "CONTROL", str(self.control_path))
        return self.control_path

    def events(self, event: str | None = None, *, spec: str | None = None) -> list[dict[str, Any]]:
        """The log's records, optionally only one kind of ``event`` and/or one ``spec``."""
        if not self.log_path.exists():
            return []
        # A line still being appended by a running fake has no newline yet: leave it out.
        lines = self.log_path.read_text(encoding="utf-8").split("\n")[:-1]
        records = [json.loads(line) for line in lines if line.strip()]
        # dagspec's preflight asks `autospec --version`: that is not an agent at work
        probes = {r["pid"] for r in records if r["event"] == "start" and r["argv"] == ["--version"]}
        return [
            record
            for record in records
            if record.get("pid") not in probes
            and (event is None or record["event"] == event)
            and (spec is None or record.get("spec") == spec)
        ]

    def wait_event(self, event: str, *, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Block until the log holds an ``event`` record whose fields match ``fields``."""
        found: list[dict[str, Any]] = []

        def present() -> bool:
            found[:] = [
                r for r in self.events(event) if all(r.get(k) == v for k, v in fields.items())
            ]
            return bool(found)

        wait_for(present, timeout=timeout, what=f"log event {event} {fields}")
        return found[0]


def make_autospec_project(repo: Path) -> None:
    """What ``autospec init`` leaves: a constitution and a config. No .gitignore on purpose."""
    memory = repo / ".autospec" / "memory"
    memory.mkdir(parents=True, exist_ok=True)
    (memory / "constitution.yaml").write_text(CONSTITUTION, encoding="utf-8")
    (repo / ".autospec" / "config.yml").write_text(
        "# written by dagspec's tests\nimplement_method: phases\n", encoding="utf-8"
    )


@pytest.fixture
def fake_autospec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAutospec:
    """The fake ``autospec`` first on PATH, logging to tmp, with no pauses between steps.

    ``python3`` on PATH becomes this test run's interpreter, so the fake's ``#!/usr/bin/env
    python3`` starts without a version-manager shim (about 60 ms less per run).
    """
    executable = FAKE_DIR / "autospec"
    assert os.access(executable, os.X_OK), f"{executable} must be executable"
    state = tmp_path / "fake-autospec"
    (state / "bin").mkdir(parents=True)
    interpreter = state / "bin" / "python3"
    interpreter.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    interpreter.chmod(0o755)
    path = os.pathsep.join([str(FAKE_DIR), str(interpreter.parent), os.environ.get("PATH", "")])
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv("AUTOSPEC_SKIP_PERMISSIONS_NOTICE", "1")
    monkeypatch.setenv(PREFIX + "LOG", str(state / "log.jsonl"))
    monkeypatch.setenv(PREFIX + "STEP_SECONDS", "0")
    monkeypatch.setenv(PREFIX + "GATE_DIR", str(state / "gates"))
    return FakeAutospec(
        path=executable,
        log_path=state / "log.jsonl",
        control_path=state / "control.json",
        gate_dir=GateDir(state / "gates"),
        monkeypatch=monkeypatch,
    )
