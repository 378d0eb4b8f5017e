"""Aligned text columns for the terminal: the per-device tables of `fleet deploy` and `fleet status`."""

from __future__ import annotations


def columns(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, *rows]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in lines)
