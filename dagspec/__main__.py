"""``python -m dagspec`` (``dag.pyz`` has its own ``__main__.py``, from ``build_zipapp.py``)."""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):  # noqa: UP036  (3.7 to 3.10 get here; say so, as dag.pyz does)
    sys.exit(
        f"dag: error: dagspec needs Python 3.11 or newer, and {sys.executable} is Python "
        f"{sys.version.split()[0]}: run it with python3.11 or newer"
    )

try:
    from dagspec.cli import main
    from dagspec.console import end_process
except KeyboardInterrupt:  # Ctrl-C while starting: nothing was done
    sys.stderr.write("dag: interrupted\n")
    raise SystemExit(130) from None

end_process(main())
