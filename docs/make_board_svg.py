"""Make docs/board.svg, the picture of the live board in the README, from a real `dag demo`.

    .venv/bin/python docs/make_board_svg.py    # needs pyte (the dev extra) and git

It runs `dag demo --progress tty --color always` in a throwaway directory on a 110x24
"terminal" (COLUMNS, LINES), plays its output into the pyte terminal emulator, keeps the
frame that shows the most (running specs first, then completed ones and task bars),
and writes that screen as an SVG.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from html import escape
from pathlib import Path

import pyte

ROOT = Path(__file__).resolve().parent.parent
COLUMNS, LINES = 110, 24
CHAR_W, LINE_H, PAD = 8.4, 18, 12
COLORS = {
    "default": "#d0d0d0",
    "red": "#ff6b6b",
    "green": "#5fd75f",
    "yellow": "#e5c07b",
    "magenta": "#c678dd",
    "cyan": "#56b6c2",
}
SYNC_END = b"\x1b[?2026l"


def demo_output() -> bytes:
    """What `dag demo` writes to the terminal."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "dagspec", "demo", "--dir", f"{tmp}/demo"]
        env = {"PYTHONPATH": str(ROOT), "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
        done = subprocess.run(
            [*argv, "--progress", "tty", "--color", "always"],
            env={**os.environ, **env},
            capture_output=True,
            check=True,
        )
    return done.stdout


def busiest_frame(output: bytes) -> list[list[pyte.screens.Char]]:
    """The board's lines at the end of the frame that shows the most."""
    screen = pyte.Screen(COLUMNS, LINES)
    screen.set_mode(pyte.modes.LNM)
    stream = pyte.ByteStream(screen)
    best: tuple[int, list[list[pyte.screens.Char]]] = (-1, [])
    for chunk in output.split(SYNC_END):
        stream.feed(chunk + SYNC_END)
        rows = [[screen.buffer[y][x] for x in range(COLUMNS)] for y in range(LINES)]
        texts = ["".join(c.data for c in row) for row in rows]
        start = next((i for i, t in enumerate(texts) if t.startswith("run demo ·")), None)
        if start is None:
            continue
        board = rows[start:]
        text = "\n".join("".join(c.data for c in row) for row in board)
        score = 6 * text.count(" running ") + 2 * text.count(" completed ") + text.count("[#")
        if score > best[0]:
            best = (score, board)
    lines = best[1]
    while lines and not "".join(c.data for c in lines[-1]).strip():
        lines.pop()
    return lines


def svg(lines: list[list[pyte.screens.Char]]) -> str:
    """The lines as SVG text on a dark terminal background, colours and bold kept."""
    width = COLUMNS * CHAR_W + 2 * PAD
    height = len(lines) * LINE_H + 2 * PAD
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'viewBox="0 0 {width:.0f} {height}">',
        '<rect width="100%" height="100%" rx="6" fill="#1e1e1e"/>',
        '<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14" '
        'xml:space="preserve">',
    ]
    for y, row in enumerate(lines):
        base = PAD + (y + 1) * LINE_H - 5
        for x, run_text, fg, bold in _runs(row):
            weight = ' font-weight="bold"' if bold else ""
            out.append(
                f'<text x="{PAD + x * CHAR_W:.1f}" y="{base}" '
                f'fill="{COLORS.get(fg, COLORS["default"])}"{weight}>{escape(run_text)}</text>'
            )
    out += ["</g>", "</svg>"]
    return "\n".join(out) + "\n"


def _runs(row: list[pyte.screens.Char]) -> list[tuple[int, str, str, bool]]:
    """Stretches of one colour and weight: (column, text, colour, bold), blanks left out."""
    runs: list[tuple[int, str, str, bool]] = []
    for x, char in enumerate(row):
        if runs and (runs[-1][2], runs[-1][3]) == (char.fg, char.bold):
            start, text, fg, bold = runs[-1]
            runs[-1] = (start, text + char.data, fg, bold)
        else:
            runs.append((x, char.data, char.fg, char.bold))
    return [(x, t.rstrip(), fg, b) for x, t, fg, b in runs if t.strip()]


def main() -> int:
    lines = busiest_frame(demo_output())
    if not lines:
        print("no frame of the board in the demo's output", file=sys.stderr)
        return 1
    target = ROOT / "docs" / "board.svg"
    target.write_text(svg(lines), encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}: {len(lines)} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
