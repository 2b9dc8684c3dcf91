"""Words of messages: how a count reads (``1 spec``, ``2 specs``: the one place for
plurals), and what an unknown spec id is told."""

from __future__ import annotations

from collections.abc import Sequence


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, the noun plural unless the count is one.

    >>> counted(1, "spec"), counted(0, "layer"), counted(2, "branch", "branches")
    ('1 spec', '0 layers', '2 branches')
    """
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def no_such_spec(run_id: str, spec_id: str, ids: Sequence[str]) -> str:
    """The error for a spec id the run lacks: the closest id (``difflib``, case aside) as a
    did-you-mean, else every id of the run, as for other unknown names.

    >>> no_such_spec("r", "api", ["apj", "db"])
    "run 'r' has no spec 'api' (did you mean 'apj'?)"
    """
    import difflib  # here: as errors.did_you_mean, to keep every start fast

    lowered = {spec.lower(): spec for spec in ids}
    close = difflib.get_close_matches(spec_id.lower(), list(lowered), n=1)
    if close:
        return f"run '{run_id}' has no spec '{spec_id}' (did you mean '{lowered[close[0]]}'?)"
    listed = (
        ", ".join(ids) if len(ids) <= 20 else ", ".join(ids[:20]) + f" and {len(ids) - 20} more"
    )
    return f"run '{run_id}' has no spec '{spec_id}': its specs are {listed}"
