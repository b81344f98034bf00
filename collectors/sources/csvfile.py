"""What the CSV formats share: a header checked against the documented columns."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from typing import BinaryIO

from .fetch import FormatError


def text_lines(stream: BinaryIO, encoding: str = "utf-8-sig") -> Iterator[str]:
    """The stream's lines, decoded incrementally (a BOM is dropped)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    while True:
        chunk = stream.read(1 << 16)
        text = decoder.decode(chunk, final=not chunk)
        pending += text
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        yield from lines
        if not chunk:
            if pending:
                yield pending
            return


def check_header(what: str, header: list[str], required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, int]:
    """Column positions by lower-case name; FormatError on a missing required or an
    unknown column (the export changed: better no data than wrong data)."""
    names = [h.strip().lower() for h in header]
    known = {c.lower() for c in required + optional}
    missing = [c for c in required if c.lower() not in names]
    unknown = [h.strip() for h in header if h.strip() and h.strip().lower() not in known]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(repr(c) for c in missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(repr(c) for c in unknown)}")
        raise FormatError(f"{what}: {' and '.join(parts)} in the header {header!r}; the format changed")
    return {n: i for i, n in enumerate(names) if n}


def records(lines: Iterator[str]) -> Iterator[list[str]]:
    return csv.reader(lines)
