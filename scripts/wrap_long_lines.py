"""Wrap the lines `ruff check` finds over 120 characters, touching nothing else (for code merged from elsewhere).

1. Statements: `ruff format` is run on each file, and only its changes to statements that held a line over the
   limit are kept; the file's AST must stay the same, or the file is left alone.
2. What the formatter cannot split: a string literal becomes two implicitly concatenated ones (split at a space,
   never inside an f-string's braces), a one-line docstring and a comment become two lines.
Whatever is left is printed, to be wrapped by hand.  Usage: .venv/bin/python scripts/wrap_long_lines.py src tests
"""

from __future__ import annotations

import ast
import difflib
import re
import subprocess
import sys
from pathlib import Path

LIMIT = 120
RUFF = str(Path(sys.executable).with_name("ruff"))


def _long(lines: list[str]) -> bool:
    return any(len(line.rstrip("\n")) > LIMIT for line in lines)


def _formatted(text: str, path: Path) -> str:
    done = subprocess.run(
        [RUFF, "format", "--line-length", str(LIMIT), "--config", "format.quote-style='preserve'",
         "--stdin-filename", str(path), "-"],
        input=text, capture_output=True, text=True, check=True,
    )
    return done.stdout


def format_statements(path: Path) -> bool:
    old = path.read_text(encoding="utf-8")
    lines = old.splitlines(keepends=True)
    if not _long(lines):
        return False
    new_lines = _formatted(old, path).splitlines(keepends=True)
    kept: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, lines, new_lines, autojunk=False).get_opcodes():
        kept += new_lines[j1:j2] if tag != "equal" and _long(lines[i1:i2]) else lines[i1:i2]
    new = "".join(kept)
    if new == old or ast.dump(ast.parse(old)) != ast.dump(ast.parse(new)):
        return False
    path.write_text(new, encoding="utf-8")
    return True


def _space_before(text: str, start: int, end: int, *, fstring: bool) -> int | None:
    depth, best = 0, None
    for i, ch in enumerate(text):
        if fstring and ch in "{}":
            depth += 1 if ch == "{" else -1
        if start <= i < end and ch == " " and depth == 0:
            best = i
    return best


def _split(line: str) -> list[str] | None:
    indent = line[: len(line) - len(line.lstrip())]
    body = line.strip()
    if m := re.fullmatch(r'"""(.*)"""', body):
        cut = _space_before(m.group(1), 0, LIMIT - len(indent) - 4, fstring=False)
        return None if cut is None else [f'{indent}"""{m.group(1)[:cut]}', f'{indent}{m.group(1)[cut + 1:]}"""']
    if body.startswith("#"):
        text = body[1:].strip()
        cut = _space_before(text, 0, LIMIT - len(indent) - 3, fstring=False)
        return None if cut is None else [f"{indent}# {text[:cut]}", f"{indent}# {text[cut + 1:]}"]
    if (m := re.match(r"(.*?\S)\s+# (.*)$", line)) and len(m.group(1)) <= LIMIT and '"' not in m.group(2):
        if not m.group(2).startswith(("noqa", "type:")):
            return [f"{indent}# {m.group(2)}", m.group(1)]
    m = re.fullmatch(r'(.*?)(f?)(["\'])(.*)\3([,)]*)', body)
    if m is None or m.group(3) in m.group(4) or m.group(1).lstrip().startswith("return"):
        return None
    prefix, f, quote, text, suffix = m.groups()
    cut = _space_before(text, 20, LIMIT - len(indent) - len(prefix) - len(f) - 2, fstring=bool(f))
    if cut is None:
        return None
    pad = indent + (" " * len(prefix) if prefix and not prefix.rstrip().endswith(("(", "[")) else "")
    return [f"{indent}{prefix}{f}{quote}{text[:cut + 1]}{quote}", f"{pad}{f}{quote}{text[cut + 1:]}{quote}{suffix}"]


def split_literals(paths: list[str]) -> list[str]:
    found = subprocess.run(
        [RUFF, "check", *paths, "--select", "E501", "--output-format", "concise"], capture_output=True, text=True
    ).stdout
    todo: dict[str, list[int]] = {}
    for hit in re.finditer(r"^(.+?):(\d+):\d+: E501", found, re.MULTILINE):
        todo.setdefault(hit.group(1), []).append(int(hit.group(2)))
    left = []
    for name, numbers in todo.items():
        path = Path(name)
        lines = path.read_text(encoding="utf-8").split("\n")
        for n in sorted(numbers, reverse=True):
            parts = _split(lines[n - 1])
            if parts is None:
                left.append(f"{name}:{n}")
            else:
                lines[n - 1 : n] = parts
        path.write_text("\n".join(lines), encoding="utf-8")
    return left


def main(paths: list[str]) -> int:
    files = [p for root in paths for p in sorted(Path(root).rglob("*.py")) if "migrations/versions" not in str(p)]
    changed = sum(format_statements(p) for p in files)
    left = split_literals(paths)
    print(f"{changed} file(s) reformatted; {len(left)} line(s) left to wrap by hand", *left, sep="\n")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src", "tests"]))
