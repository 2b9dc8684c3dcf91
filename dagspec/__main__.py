"""``python -m dagspec`` and the entry point of ``dag.pyz``."""

from __future__ import annotations

from dagspec.cli import main

raise SystemExit(main())
