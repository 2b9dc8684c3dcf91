"""The autospec contract, seen from outside: the command for a resume point, the banners, tasks.

Pure functions over what autospec leaves behind (docs/autospec-contract.md):

- which stages are still to run, judged from the artifacts in the spec directory (§1.6), and
  the exact command for them (``-spti "<desc>"`` for a new spec, ``-pti|-ti|-i --spec <dir>``
  with ``SPECIFY_FEATURE=<dir>`` to resume one; without ``--spec`` below 0.10.4, whose
  ``--spec`` is broken: ``spec_flag_works``);
- the stage banners and spec-directory lines of its output (§1.3);
- task progress in ``tasks.yaml``, counted as autospec's ``GetTaskStats`` does (§2.1).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import attrs

from dagspec.errors import DagspecError, quoted

STAGES = ("specify", "plan", "tasks", "implement")
# The artifact each stage writes; a stage is done when its artifact exists (contract §2.1).
ARTIFACTS = {"specify": "spec.yaml", "plan": "plan.yaml", "tasks": "tasks.yaml"}
_FLAGS = {"specify": "-spti", "plan": "-pti", "tasks": "-ti", "implement": "-i"}
# The first version whose `run --spec X` works: upstream v0.7.3 looks for the artifacts in
# `specs/-X/` (it joins an empty number and X), so a continuation fails after the agent
# worked (issue 13); the fork at 8c81903 (= v0.10.4) finds `specs/X/`.
SPEC_FLAG_SINCE = (0, 10, 4)
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def first_missing_stage(present: Collection[str]) -> str:
    """The first stage whose artifact is missing: where autospec must start (contract §1.6).

    >>> first_missing_stage({"spec.yaml"})
    'plan'
    """
    for stage, artifact in ARTIFACTS.items():
        if artifact not in present:
            return stage
    return "implement"


def trusted(present: Collection[str], last_stage: str | None) -> frozenset[str]:
    """The artifacts to trust after an attempt that ended (failed, was interrupted) during
    ``last_stage``: only those of the stages before it. That stage's own artifact may be
    half-written or have failed autospec's checks (a plan that failed validation leaves an
    invalid ``plan.yaml``), and later ones were made from it; so the restart begins at
    ``last_stage`` at the latest, never past it because its artifact exists.

    >>> sorted(trusted({"spec.yaml", "plan.yaml"}, "plan"))
    ['spec.yaml']
    """
    if last_stage not in STAGES:
        return frozenset(present)
    before = STAGES[: STAGES.index(last_stage)]
    return frozenset(ARTIFACTS[s] for s in before if s in ARTIFACTS and ARTIFACTS[s] in present)


def artifacts_in(spec_dir: Path) -> frozenset[str]:
    """The artifact files present in a spec directory (none when it does not exist)."""
    return frozenset(name for name in ARTIFACTS.values() if (spec_dir / name).is_file())


def version_of(said: str | None) -> tuple[int, ...] | None:
    """The version in what ``autospec --version`` printed (``autospec version v0.7.3``,
    ``autospec fake-0.10.4``); None when it names none (a ``dev`` build).

    >>> version_of("autospec version v0.7.3")
    (0, 7, 3)
    """
    match = _VERSION.search(said or "")
    return tuple(int(n) for n in match.groups(default="0")) if match else None


_NAMES_AUTOSPEC = re.compile(r"\bautospec\b", re.IGNORECASE)
_LEADS_WITH_AUTOSPEC = re.compile(r"autospec\b", re.IGNORECASE)
_BARE_VERSION = re.compile(r"v?\d+\.\d+(?:\.\d+)?\S*\Z")
_COLOUR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # a terminal's colour and style codes


def version_line(said: str) -> str | None:
    """The line of what ``autospec --version`` printed that says which autospec it is,
    without colour codes: the first that starts with autospec's name, as autospec's own
    answer does (``autospec version v0.7.3``; a build without a version says ``autospec
    version dev``), else the first that names autospec at all, else the first that is a
    version alone (``v0.10.4``). A wrapper's notice is passed over, even one naming
    autospec and another version (``A new release of autospec is available: v0.10.4``).
    None when no line is one: not autospec.

    >>> version_line("note: a new autospec, v0.10.4\\nautospec version v0.7.3\\nBuilt: 1a2b")
    'autospec version v0.7.3'
    """
    lines = [_COLOUR.sub("", line).strip() for line in said.splitlines()]
    leading = [line for line in lines if _LEADS_WITH_AUTOSPEC.match(line)]
    named = [line for line in lines if _NAMES_AUTOSPEC.search(line)]
    bare = [line for line in lines if _BARE_VERSION.match(line)]
    return next(iter(leading or named or bare), None)


_VERSION_WORD = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9]+-)?"  # a build's name: `fake-0.10.4` (never `v-1.0.0`)
    r"v?[0-9]{1,9}\.[0-9]{1,9}(?:\.[0-9]{1,9})?"  # v0.10.4, 0.10, 20260115.1.0
    r"(?:[-+.][0-9A-Za-z][0-9A-Za-z.+-]*)?"  # -rc1, +a1b2, -3-g1a2b3c, .1
    r"[,;)]?"  # as a sentence or a bracket ends
)
_LONGEST = 200  # characters of a version line dagspec records
# A commit a build from a clone names instead of a version (`autospec version 8c81903`,
# `dev (commit 8c81903)`, git describe's `g8c81903`): a build that names no version.
_COMMIT_ID = re.compile(r"\(?g?(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}[,;)]?")


def version_problem(line: str) -> str | None:
    """Why ``line`` (``version_line``'s, read with ``surrogateescape``) is not a version
    dagspec can read and record, or None: it holds a byte that is not UTF-8, a control
    character, more than 200 characters, or a first word with a digit that is not a
    version (``v-1.0.0``, a number of more than 9 digits) nor a commit id. A line with no
    such word is a build that names no version (``autospec version dev``, ``autospec
    version 8c81903``, built from a clone without tags). The caller shows the line.

    >>> version_problem("autospec version v0.7.3"), version_problem("autospec version v-1.0.0")
    (None, "whose version 'v-1.0.0' is not one (such as v0.10.4 or 0.10.4-rc1)")
    """
    if any("\udc80" <= char <= "\udcff" for char in line):
        return "which is not UTF-8"
    if not line.isprintable():
        return "which holds a control character"
    if len(line) > _LONGEST:
        return f"which is longer than {_LONGEST} characters"
    words = [w for w in line.split() if any(c.isdigit() for c in w)]
    word = next((w for w in words if not _COMMIT_ID.fullmatch(w)), None)
    if word is None or _VERSION_WORD.fullmatch(word):
        return None
    return f"whose version {quoted(word)} is not one (such as v0.10.4 or 0.10.4-rc1)"


def spec_flag_works(said: str | None) -> bool:
    """Whether ``run --spec <dir>`` finds ``specs/<dir>/`` in the autospec that said
    ``said`` to ``--version``: from 0.10.4 on, and in a build that names no version (a
    ``dev`` build is taken to be recent)."""
    version = version_of(said)
    return version is None or version >= SPEC_FLAG_SINCE


@attrs.frozen
class Invocation:
    """One autospec command: its argv, the variables it needs set, the stage it starts at."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    stage: str

    def shell(self) -> str:
        """The command as a user would type it (for ``--dry-run``)."""
        prefix = "".join(f"{k}={shlex.quote(v)} " for k, v in sorted(self.env.items()))
        return prefix + shlex.join(self.argv)


def invocation(
    executable: str,
    *,
    description: str | None,
    spec_dir: str | None,
    present: Collection[str],
    spec_flag: bool = True,
) -> Invocation:
    """The command that runs the stages still missing for one spec.

    ``spec_dir`` is the spec's directory name under ``specs/`` (``004-user-auth``), or None
    when it has none yet; ``present`` the artifact files found there. A new spec gets
    ``run -spti -y "<description>"`` (with ``--`` first when the description starts with
    ``-``); a spec with a ``spec.yaml`` gets ``run -pti|-ti|-i --spec <dir> -y`` and
    ``SPECIFY_FEATURE=<dir>``, because autospec renders its prompts from that variable, not
    from ``--spec`` (contract §1.6). Without ``spec_flag`` (``spec_flag_works``) ``--spec``
    is left out: autospec then takes the spec of its ``NNN-name`` branch, else the most
    recently modified ``specs/*-*`` directory, so the caller makes ``spec_dir`` that one.
    """
    stage = first_missing_stage(present) if spec_dir is not None else "specify"
    if stage == "specify":
        if description is None:
            where = f"specs/{spec_dir}/spec.yaml" if spec_dir else "a spec.yaml"
            raise DagspecError(f"there is no {where} and the feature has no description")
        tail = ("--", description) if description.startswith("-") else (description,)
        return Invocation((executable, "run", "-spti", "-y", *tail), {}, stage)
    assert spec_dir is not None
    target = ("--spec", spec_dir) if spec_flag else ()
    argv = (executable, "run", _FLAGS[stage], *target, "-y")
    return Invocation(argv, {"SPECIFY_FEATURE": spec_dir}, stage)


# --- output ---------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_STAGE = re.compile(
    r"\[(?:Stage|Phase) (\d+)/(\d+)\] "
    r"(constitution|specify|clarify|plan|tasks|checklist|analyze|implement)\.\.\.\Z"
)
_PHASE = re.compile(r"\[Phase (\d+)/(\d+)\] (.+)\Z")
_CREATED = re.compile(r"Created specs/([^/\s]+)/spec\.yaml")
_SPEC = re.compile(r"Spec: specs/([^/\s]+)/\Z")
_ERROR = re.compile(r"Error: .+")
# The lines worth parsing, found in a chunk of raw output without decoding all of it: an
# agent can print megabytes, and only banners and errors matter to an observer.
INTERESTING = re.compile(rb"^.*(?:\[Stage |\[Phase |Created specs/|Spec: specs/|Error: ).*$", re.M)


@attrs.frozen
class StageSeen:
    """``[Stage i/N] <stage>...``: autospec started a stage."""

    stage: str


@attrs.frozen
class PhaseSeen:
    """``[Phase p/P] <title>``: implement started one phase of tasks.yaml."""

    number: int
    total: int
    title: str


@attrs.frozen
class SpecDirSeen:
    """``Created specs/<dir>/spec.yaml`` or ``Spec: specs/<dir>/``: the spec's directory."""

    name: str


@attrs.frozen
class ErrorSeen:
    """``Error: <message>`` (on stderr): why a stage failed."""

    text: str


Banner = StageSeen | PhaseSeen | SpecDirSeen | ErrorSeen


def plain(line: bytes) -> str:
    """One output line as text for parsing: invalid UTF-8 replaced, colour codes removed."""
    return _ANSI.sub("", line.decode("utf-8", "replace")).strip()


def parse_banner(text: str) -> Banner | None:
    """What a line of autospec's output tells an observer, if anything (contract §1.3).

    >>> parse_banner("[Stage 2/4] plan...")
    StageSeen(stage='plan')
    """
    if match := _STAGE.match(text):
        return StageSeen(match[3])
    if match := _PHASE.match(text):
        return PhaseSeen(int(match[1]), int(match[2]), match[3])
    if (match := _CREATED.search(text)) or (match := _SPEC.match(text)):
        return SpecDirSeen(match[1])
    if _ERROR.match(text):
        return ErrorSeen(text)
    return None


# --- tasks.yaml -----------------------------------------------------------------------------

_DONE = frozenset({"completed", "done", "complete"})
_IN_PROGRESS = frozenset({"in_progress", "inprogress", "in-progress", "wip"})


@attrs.frozen
class TaskStats:
    """Task counts of a tasks.yaml; ``done`` / ``total`` is the "implement: 5/12" progress."""

    done: int = 0
    in_progress: int = 0
    blocked: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        return self.done + self.in_progress + self.blocked + self.pending


def count_statuses(statuses: Collection[str]) -> TaskStats:
    """Count as autospec's ``GetTaskStats`` does: case-insensitive, unknown means pending."""
    kinds = [_kind(s.lower()) for s in statuses]
    return TaskStats(*(kinds.count(k) for k in ("done", "in_progress", "blocked", "pending")))


def _kind(status: str) -> str:
    if status in _DONE:
        return "done"
    if status in _IN_PROGRESS:
        return "in_progress"
    return "blocked" if status == "blocked" else "pending"


def parse_tasks(text: str, *, strict: bool = True) -> TaskStats | None:
    """The task counts of a tasks.yaml's text; None when it cannot be trusted yet.

    autospec rewrites tasks.yaml non-atomically (truncate, then write), so a reader can see
    an empty file, half a document that does not parse, or, cut at a line end, one that
    parses but lacks its last tasks. All three give None so the caller reads again; the
    last is recognised by fewer tasks than ``summary.total_tasks`` says, or a last task
    without its ``status`` (``strict``; pass False to accept such a file, e.g. one an agent
    edited by hand).
    """
    data = _load_yaml(text)
    phases = data.get("phases") if isinstance(data, dict) else None
    if not isinstance(phases, list):
        return None
    tasks = [t for p in phases if isinstance(p, dict) for t in _tasks_of(p)]
    stats = count_statuses([str(t.get("status", "")) for t in tasks])
    if strict and (
        stats.total < (_declared_total(data) or 0) or any("status" not in t for t in tasks)
    ):
        return None
    return stats


def _load_yaml(text: str) -> Any:
    from strictyaml.ruamel import YAML
    from strictyaml.ruamel.error import YAMLError

    if not text.strip():
        return None
    try:
        return YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError, TypeError):
        return None


def _tasks_of(phase: dict[Any, Any]) -> list[dict[Any, Any]]:
    tasks = phase.get("tasks")
    return [t for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else []


def _declared_total(data: dict[Any, Any]) -> int | None:
    summary = data.get("summary")
    total = summary.get("total_tasks") if isinstance(summary, dict) else None
    return total if isinstance(total, int) else None
