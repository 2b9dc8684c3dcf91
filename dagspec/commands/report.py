"""``dag report``: the report card of a run (default: the newest), as a table, JSON or
Markdown. It only reads the state file, like ``dag status``."""

from __future__ import annotations

from pathlib import Path

from dagspec import relocate
from dagspec import report as card_of
from dagspec.commands.status import newest_run
from dagspec.errors import EXIT_OK
from dagspec.render import as_typed_run, terminal_width
from dagspec.state import load, settled, utcnow
from dagspec.usage import usage_of
from dagspec.workspace import RunPaths, check_run_id

RENDERERS = {
    "text": lambda card: card_of.render_text(card, width=terminal_width()),
    "json": card_of.render_json,
    "markdown": card_of.render_markdown,
}


def report(repo: Path, run_id: str | None, *, fmt: str) -> int:
    """Print the report card of ``run_id`` (default: the newest run) in ``fmt`` (``text``,
    ``json`` or ``markdown``); exit 0 whatever the run's status (``dag status`` says that)."""
    paths = RunPaths(repo, check_run_id(run_id) if run_id else newest_run(repo))
    run = settled(relocate.seen_from(paths.repo, load(paths)))
    if fmt != "json":  # a reason's `dag ...` as the user types dag; JSON keeps it as recorded
        run = as_typed_run(run)
    card = card_of.card(run, now=utcnow(), usage=usage_of(run))
    print(RENDERERS[fmt](card), end="")
    return EXIT_OK
