"""What merging a run did, or in a dry run would do, and how it reads (``dagspec.merge``
makes it)."""

from __future__ import annotations

import enum
import errno
from collections.abc import Iterable
from typing import NamedTuple

import attrs

from dagspec import fit, onto_advice
from dagspec.errors import EXIT_FAILED, EXIT_OK
from dagspec.undeleted import Undeleted


class Outcome(enum.Enum):
    """What merging did to one completed spec; ``WOULD_*`` are a dry run's predictions."""

    MERGED = "merged"
    ALREADY_MERGED = "already merged"
    CONFLICT = "conflict"
    BLOCKED = "blocked"
    MISSING = "branch missing"
    UNRELATED = "unrelated"  # its branch shares no history with the base branch
    DROPPED = "merge dropped"  # recorded merged, by a commit the base branch no longer has
    LOST = "work lost"  # dropped, that merge commit pruned since, and no branch holds it
    WOULD_MERGE = "would merge"
    WOULD_CONFLICT = "would conflict"


LEFT_OFF = frozenset(
    {
        Outcome.CONFLICT,
        Outcome.BLOCKED,
        Outcome.MISSING,
        Outcome.UNRELATED,
        Outcome.DROPPED,
        Outcome.LOST,
        Outcome.WOULD_CONFLICT,
    }
)
"""Outcomes that leave a completed spec off the base branch."""


@attrs.frozen
class SpecMerge:
    """What happened (or, in a dry run, would happen) to one completed spec."""

    spec_id: str
    branch: str
    outcome: Outcome
    commit: str | None = None  # its merge commit, when known
    files: tuple[str, ...] = ()  # the conflicting files
    blocked_by: tuple[str, ...] = ()  # the specs left off that it depends on
    since: str | None = None  # a replay's: the commit its own changes start from


@attrs.frozen
class MergeReport:
    """The result of ``merge_run``, for ``render_report`` and ``merge_exit_code``.

    ``old_tip``/``new_tip`` are the base branch's tip before and after (equal when it did
    not move). ``parked_on`` names ``dag/<run>/merged`` when the result waits there, and
    ``parked_because`` says why, ``parked_until`` what must happen before it can be taken.
    ``checkout`` is the checkout of the base branch that was
    fast-forwarded, if any.
    """

    run_id: str
    base_branch: str
    dry_run: bool
    specs: tuple[SpecMerge, ...]
    old_tip: str
    new_tip: str
    not_completed: tuple[tuple[str, str], ...] = ()  # (spec id, status) of unfinished specs
    checkout: str | None = None
    parked_on: str | None = None
    parked_because: str | None = None
    merge_again: bool = False  # the checkout is clean again: ``dag merge`` takes the result
    parked_until: str = "the checkout is clean"  # what must happen before the result is taken
    order: tuple[str, ...] = ()  # the run's spec ids in its report's order: the rows' order
    undeleted: Undeleted | None = None  # the run's branches git kept once all was merged
    onto_current: bool = False  # replayed onto a rewritten base: ``--onto-current`` again

    @property
    def base_moved(self) -> bool:
        return self.new_tip != self.old_tip


_NO_ROOM = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space"}
_NO_ROOM[errno.EFBIG] = "raise the file size limit (ulimit -f)"


def unrecorded(report: MergeReport, exc: OSError) -> str | None:
    """The error when the run's state could not be written (``exc``: no room) after the
    merge moved the base branch or parked its result, which stay: what it did, and that
    the next ``dag merge`` records it; None when it moved nothing, or for another error."""
    todo = _NO_ROOM.get(exc.errno or 0)
    if todo is None or not (report.base_moved or report.parked_on):
        return None
    done = (
        f"{report.base_branch} was moved to {report.new_tip[:12]}"
        if report.base_moved
        else f"its result waits on {report.parked_on}"
    )
    return (
        f"run {report.run_id} was merged ({done}, as said above), but its state could not "
        f"record it: cannot write {exc.filename}: {exc.strerror}: {todo}, then "
        f"`{onto_advice.merge_command(report.run_id, onto=report.onto_current)}` records it, "
        "merging nothing again"
    )


# --- rendering ----------------------------------------------------------------------------


def merge_exit_code(report: MergeReport) -> int:
    """1 when a completed spec is (or, in a dry run, would be) left off the base branch: a
    conflict, a spec depending on one, a missing branch, or the result left on
    ``dag/<run>/merged``; else 0."""
    left_off = report.parked_on is not None or any(s.outcome in LEFT_OFF for s in report.specs)
    return EXIT_FAILED if left_off else EXIT_OK


def render_report(report: MergeReport, *, width: int = fit.UNLIMITED) -> str:
    """The report as text for a terminal of ``width`` columns (ending in a newline): one line
    per spec, then what happened to the base branch, and how to finish by hand where
    something is left."""
    dry = " (dry run: nothing is written)" if report.dry_run else ""
    lines = [f"Run {report.run_id}, merging into {report.base_branch}{dry}:"]
    rows = [
        _Row(_outcome_label(s, report), s.spec_id, _detail(s, report), _wraps(s))
        for s in report.specs
    ]
    rows += [
        _Row("not completed", spec_id, f"({status})") for spec_id, status in report.not_completed
    ]
    place = {spec_id: index for index, spec_id in enumerate(report.order)}
    rows.sort(key=lambda row: place.get(row.spec_id, len(place)))  # as `dag report` lists them
    lines += _table(rows, width)
    lines += _parked(report) if report.parked_on else [_landing(report)]
    lines += _conflict_hints(report)
    return "\n".join(lines) + "\n"


class _Row(NamedTuple):
    outcome: str
    spec_id: str
    detail: str
    wraps: bool = False  # the detail names what to act on: whole, on a line of its own if need be


_OUTCOME = 15  # the widest outcome, "not merged yet", and a blank
_LEFT = f"  {' ' * _OUTCOME} "  # what stands before a spec id


def _wraps(result: SpecMerge) -> bool:
    return bool(result.files or result.blocked_by) or result.outcome in _NAMING


_NAMING = frozenset(
    {Outcome.MISSING, Outcome.UNRELATED, Outcome.DROPPED, Outcome.LOST}
)  # details that name what to act on


# What the merge table gives up as the width shrinks (``fit.widths``): the outcome stays.
GIVE_UP = (
    fit.Give("spec", fit.SPEC_MIN, as_needed=True),
    fit.Give("detail"),  # a commit or a status, whole or not at all
    fit.Give("spec", fit.SPEC_LEAST, as_needed=True),
)


def _table(rows: list[_Row], width: int) -> list[str]:
    """A line per row: outcome, spec id, detail, the ids in one column whatever their length
    or characters. Where the line would be wider than ``width``, the ids are cut (with
    ``…``, never under ``fit.SPEC_MIN`` columns) to leave room for the details, then the
    details that say a commit or a status go whole (never a stub of a commit); a detail that
    names files or branches to act on goes whole on a line of its own under its row when it
    does not fit on it."""
    details = [fit.width_of(row.detail) for row in rows if not row.wraps]
    columns = {
        "outcome": fit.Column(len(_LEFT) - 1, 0),
        "spec": fit.Column(max((fit.width_of(row.spec_id) for row in rows), default=0), 1),
        "detail": fit.Column(max(details, default=0)),
    }
    kept = fit.widths(columns, width, GIVE_UP)
    lines = []
    for row in rows:
        head = f"  {row.outcome:<{_OUTCOME}} {fit.pad(row.spec_id, kept['spec'])}"
        inline = fit.width_of(head) + len(fit.GAP) + fit.width_of(row.detail) <= width
        if row.wraps and not inline:
            lines.append(fit.line([(head, None)], width, False))
            lines.append(f"{_LEFT}↳ {fit.printable(row.detail)}")
            continue
        detail = row.detail if row.wraps or kept["detail"] else ""
        lines.append(fit.line([(head + fit.GAP + detail, None)], width, False))
    return lines


def _outcome_label(result: SpecMerge, report: MergeReport) -> str:
    """The outcome's words; two outcomes read apart from their value. A merge that waits on
    ``dag/<run>/_merged`` is "not merged yet", as the report card and the run's end count
    it. A spec "already merged" by a merge commit (an earlier merge, of this run or a ``git
    merge`` of yours) was "merged before": "already merged" is work on the base branch in
    content only (README, Merging), with no commit to show."""
    if result.outcome is Outcome.MERGED and report.parked_on is not None:
        return "not merged yet"
    if result.outcome is Outcome.ALREADY_MERGED and result.commit is not None:
        return "merged before"
    return result.outcome.value


def _detail(result: SpecMerge, report: MergeReport) -> str:
    """The row's detail after its spec id: the files of a conflict, what it waits for, the
    merge commit on the base branch. A merge of a result that waits on ``dag/<run>/_merged``
    shows none: ``dag merge`` builds that merge again, so its commit never reaches the base
    branch."""
    if result.files:
        return "in " + names(result.files)
    if result.blocked_by:
        return "depends on " + ", ".join(result.blocked_by) + ", left off"
    if result.outcome is Outcome.MISSING and result.commit is not None:
        return f"{result.branch}: its commit {result.commit[:12]} is gone (pruned by git gc?)"
    if result.outcome is Outcome.MISSING:
        return f"no branch {result.branch}"
    if result.outcome is Outcome.UNRELATED:
        return f"{result.branch} shares no commit with {report.base_branch} (made anew?)"
    if result.outcome is Outcome.DROPPED:
        return f"not merged any more: {(result.commit or '')[:12]} is not on the branch"
    if result.outcome is Outcome.LOST:
        return f"no longer in this repository: {(result.commit or '')[:12]} pruned, no branch"
    waits = result.outcome is Outcome.MERGED and report.parked_on is not None
    if result.outcome is Outcome.WOULD_MERGE or result.commit is None or waits:
        return ""  # a dry run's commits, and a waiting result's, are on no branch of yours
    return result.commit[:12]


def _parked(report: MergeReport) -> list[str]:
    """Why the result waits on ``dag/<run>/merged``, and how to take it."""
    if report.dry_run:
        verb, touched, wait = "would not move", "would be", "would wait"
    else:
        verb, touched, wait = "was not moved", "was", "waits"
    if report.merge_again:
        return [
            f"{report.base_branch} {verb}: {report.parked_because}.",
            f"The merged result {wait} on {report.parked_on}.",
        ]
    return [
        f"{report.base_branch} {verb}: {report.parked_because}; nothing of yours {touched} "
        "touched.",
        f"The merged result {wait} on {report.parked_on}. Once {report.parked_until}, take it "
        f"with `{onto_advice.merge_command(report.run_id, onto=report.onto_current)}` (or "
        f"`git merge --ff-only {report.parked_on}`, "
        "which the next `dag merge` records).",
    ]


def _landing(report: MergeReport) -> str:
    """Where the result went (or would go)."""
    base, checkout = report.base_branch, report.checkout
    if report.dry_run:
        if not any(s.outcome is Outcome.WOULD_MERGE for s in report.specs):
            return f"{base} would not move."
        return f"{base} would move" + (f", and {checkout} be fast-forwarded." if checkout else ".")
    if report.base_moved:
        also = f"; {checkout} fast-forwarded" if checkout else ""
        return f"{base}: {report.old_tip[:12]} -> {report.new_tip[:12]}{also}."
    if any(s.outcome in LEFT_OFF for s in report.specs):
        return f"{base} did not move."
    return f"{base} did not move: nothing new to merge."


def _conflict_hints(report: MergeReport) -> list[str]:
    conflicts = [s for s in report.specs if s.files]
    hints = [
        onto_advice.rebase_hint(report.run_id, s.spec_id, s.branch, report.base_branch, s.since)
        if report.onto_current
        else f"To merge {s.spec_id} by hand: in a clean checkout of {report.base_branch}, "
        f"`git merge {s.branch}`, resolve, commit; then `dag merge {report.run_id}` "
        "records it and merges what depends on it."
        for s in conflicts
    ]
    hints += [
        f"The branch {s.branch} of {s.spec_id} shares no history with {report.base_branch} "
        f"(made anew after it was deleted?): to merge what it has, `git rebase --root --onto "
        f"{report.base_branch} {s.branch}`; to merge {s.spec_id} as the run made it (from "
        f"its integration branch, if it joined it), move that branch aside (`git branch -m "
        f"{s.branch} NAME`); then `dag merge {report.run_id}`."
        for s in report.specs
        if s.outcome is Outcome.UNRELATED
    ]
    lost = [s.spec_id for s in report.specs if s.outcome is Outcome.LOST]
    if lost:  # one retry of them all: a spec retried without a lost dependency stays blocked
        one = len(lost) == 1
        merges, it = ("its merge was", "it") if one else ("their merges were", "them")
        hints.append(
            f"The work of {', '.join(lost)} is no longer in this repository ({merges} dropped "
            f"from {report.base_branch}, then pruned by git gc, and no branch holds {it}): "
            f"{'it would be' if report.dry_run else 'now'} recorded failed; `dag retry "
            f"{report.run_id} {' '.join(lost)}` does {it} again, or `dag cleanup "
            f"{report.run_id} --forget` forgets {it}."
        )
    return hints + _dropped_hints(report)


def _dropped_hints(report: MergeReport) -> list[str]:
    """What to do about specs whose merge commit the base branch lost, recorded unmerged."""
    dropped = [s for s in report.specs if s.outcome is Outcome.DROPPED]
    if not dropped:
        return []
    ids = ", ".join(s.spec_id for s in dropped)
    return [
        f"{report.base_branch} no longer has the merge of {ids} (reset, or a rebase aborted "
        f"after the merge?): now recorded not merged, each merge above kept in the run's "
        f"record; `{onto_advice.merge_command(report.run_id, onto=report.onto_current)}` "
        "merges them again, from each one's branch, or "
        "from its merge above (whose second parent holds its work) where the branch is gone."
    ]


def names(paths: Iterable[str], limit: int = 5) -> str:
    """At most ``limit`` paths, comma-separated, then how many more there are."""
    items = list(paths)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
