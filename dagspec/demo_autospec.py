#!/usr/bin/env python3
"""A simulated ``autospec`` for ``dag demo``: no agent, no network, a fraction of a second.

``dag demo`` writes this file's text as an executable script into the demo's directory
and runs the demo DAG with it. It keeps the outside of ``autospec run`` that dagspec reads
(docs/autospec-contract.md): the stage banners, ``specs/NNN-name/`` numbered from the
directories it sees, ``spec.yaml``, ``plan.yaml`` and ``tasks.yaml``, task statuses updated
as it implements, and resuming with ``-pti|-ti|-i --spec <dir>``. Its "implementation" is a
small Python module per spec under ``src/``. Standard library only.

Three variables of the tests' stand-in (fixtures/fake_autospec/autospec), read from the
environment and read again before every step, so that a user can see a spec fail or slow a
run down (README, "Without an AI agent"):

  FAKE_AUTOSPEC_STEP_SECONDS=0.03  The pause after each stage and each task, in seconds.
  FAKE_AUTOSPEC_FAIL_AT=<stage>    Fail (exit 1) as that stage starts: specify, plan, tasks
                                   or implement; its artifact is not written.
  FAKE_AUTOSPEC_CONTROL=<file>     A JSON list of rules ``{"match": "<regex>", "<KEY>":
                                   value}`` (KEY without the prefix: STEP_SECONDS, FAIL_AT); a
                                   rule applies when it has no "match" or ``re.search``
                                   finds it in the description or the spec's directory name,
                                   and a later one wins; null removes the key. No file, no rule.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

PAUSE = 0.03  # seconds per step, so that a run shows some progress
PREFIX = "FAKE_AUTOSPEC_"  # the knobs' names are the tests' stand-in's
STAGES = ("specify", "plan", "tasks", "implement")
FLAGS = {"-spti": STAGES, "-pti": STAGES[1:], "-ti": STAGES[2:], "-i": STAGES[3:]}
STOP = {"the", "and", "with", "for", "from", "that", "across", "of", "its", "a", "an"}


def main(argv: list[str]) -> int:
    # Like the real (Go) autospec, write UTF-8 whatever PYTHONIOENCODING the user has.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    if argv[:1] in (["--version"], ["version"]):
        print("autospec 0.10.4 (simulated by dag demo)")  # the contract it keeps
        return 0
    if argv[:1] != ["run"] or not set(argv) & set(FLAGS):
        print("Error: the demo autospec only knows `run -spti|-pti|-ti|-i`", file=sys.stderr)
        return 1
    if not Path(".autospec/memory/constitution.yaml").is_file():
        print("Error: constitution not found: run `autospec constitution`", file=sys.stderr)
        return 1
    stages = next(FLAGS[a] for a in argv if a in FLAGS)
    rest = [a for a in argv[1:] if a not in FLAGS and a not in ("-y", "--")]
    name = rest[rest.index("--spec") + 1] if "--spec" in rest else None
    if name is None and stages[0] != "specify":  # going on without --spec (contract §1.4)
        name = os.environ.get("SPECIFY_FEATURE")
    description = rest[-1] if name is None else _description(name)
    for number, stage in enumerate(stages, start=1):
        print(f"[Stage {number}/{len(stages)}] {stage}...", flush=True)
        if knobs(description, name).get("FAIL_AT") == stage:
            print(
                f"Error: executing stage {stage}: {stage} stage failed: simulated "
                f"(FAIL_AT {stage}, from {PREFIX}FAIL_AT or {PREFIX}CONTROL)",
                file=sys.stderr,
            )
            return 1
        name = STEPS[stage](name, description)
        pause(description, name)
    print(f"\nCompleted {len(stages)} workflow stage(s): {' → '.join(stages)}")
    print(f"Spec: specs/{name}/")
    return 0


def specify(_: str | None, description: str) -> str:
    words = [w for w in re.findall(r"[a-z0-9]+", description.lower()) if w not in STOP]
    numbers = [int(p.name[:3]) for p in Path("specs").glob("[0-9][0-9][0-9]-*")]
    name = f"{max(numbers, default=0) + 1:03d}-{'-'.join(words[:3]) or 'feature'}"
    _write(
        name,
        "spec.yaml",
        f'feature:\n  branch: "{name}"\n  status: "Draft"\n  input: {_quoted(description)}\n',
    )
    print(f"✓ Created specs/{name}/spec.yaml (schema valid)")
    return name


def plan(name: str | None, description: str) -> str:
    assert name is not None
    _write(
        name,
        "plan.yaml",
        f'plan:\n  spec_path: "specs/{name}/spec.yaml"\n'
        f"summary: {_quoted('A small module: ' + description)}\n",
    )
    print(f"✓ Created specs/{name}/plan.yaml (schema valid)")
    return name


def tasks(name: str | None, _: str) -> str:
    assert name is not None
    _write_tasks(name, ["Pending"] * 3)
    print(f"✓ Created specs/{name}/tasks.yaml (schema valid)")
    return name


def implement(name: str | None, description: str) -> str:
    assert name is not None
    statuses = _statuses(name)
    module = Path("src") / f"{name[4:].replace('-', '_')}.py"
    for index, status in enumerate(statuses):
        if status == "Completed":
            continue
        statuses[index] = "InProgress"
        _write_tasks(name, statuses)
        module.parent.mkdir(exist_ok=True)
        with module.open("a", encoding="utf-8") as file:
            file.write(_code(index, description))
        pause(description, name)
        statuses[index] = "Completed"
        _write_tasks(name, statuses)
        print(f"✓ Task T00{index + 1}: InProgress -> Completed")
    return name


STEPS = {"specify": specify, "plan": plan, "tasks": tasks, "implement": implement}


def knobs(description: str, name: str | None) -> dict[str, str]:
    """The FAKE_AUTOSPEC_* environment (without the prefix), with the rules of the control
    file that apply to this spec merged over it."""
    values = {k[len(PREFIX) :]: v for k, v in os.environ.items() if k.startswith(PREFIX)}
    control = values.get("CONTROL")
    for rule in _rules(control):
        match = rule.get("match")
        subjects = (description, name or "")
        try:
            applies = match is None or any(re.search(str(match), s) for s in subjects)
        except re.error as exc:
            raise SystemExit(f"Error: {control}: bad match {match!r}: {exc}") from None
        if applies:
            for key, value in rule.items():
                if key in ("match", "CONTROL"):
                    continue
                if value is None:
                    values.pop(key.removeprefix(PREFIX), None)
                else:
                    values[key.removeprefix(PREFIX)] = str(value)
    return values


def pause(description: str, name: str | None) -> None:
    try:
        seconds = float(knobs(description, name).get("STEP_SECONDS") or PAUSE)
    except ValueError:
        seconds = PAUSE
    time.sleep(max(seconds, 0))


def _rules(control: str | None) -> list[dict[str, object]]:
    if not control:
        return []
    try:
        rules = json.loads(Path(control).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise SystemExit(f"Error: {control}: {exc}") from None
    rules = [rules] if isinstance(rules, dict) else rules
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        raise SystemExit(f"Error: {control}: expected a JSON list of rules")
    return rules


def _code(index: int, description: str) -> str:
    if index == 0:
        return f'"""{description}."""\n'
    return f"\n\ndef step_{index}() -> str:\n    return {description!r}\n"


def _write_tasks(name: str, statuses: list[str]) -> None:
    lines = [
        "summary:",
        f"    total_tasks: {len(statuses)}",
        "phases:",
        "    - number: 1",
        "      title: Build",
        "      tasks:",
    ]
    for index, status in enumerate(statuses, start=1):
        lines += [
            f"          - id: T00{index}",
            f"            title: Step {index}",
            f"            status: {status}",
        ]
    _write(name, "tasks.yaml", "\n".join(lines) + "\n")


def _statuses(name: str) -> list[str]:
    text = (Path("specs") / name / "tasks.yaml").read_text(encoding="utf-8")
    return re.findall(r"status: (\w+)", text)


def _description(name: str) -> str:
    text = (Path("specs") / name / "spec.yaml").read_text(encoding="utf-8")
    match = re.search(r"input: (.*)", text)
    return match[1].strip('"') if match else name


def _write(name: str, artifact: str, text: str) -> None:
    path = Path("specs") / name / artifact
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
