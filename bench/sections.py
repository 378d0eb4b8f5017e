"""bench/RESULTS.md holds the full `python -m bench` report and sections that single benchmarks own and rewrite
alone (`python -m bench.dynamic`, `python -m bench.robustness`, ...), each between its own markers. A full run
rewrites the report and keeps every owned section as it was."""

from __future__ import annotations

import json
from pathlib import Path


def markers(name: str, module: str) -> tuple[str, str]:
    """The begin and end markers of the section `name` that `python -m MODULE` writes."""
    return f"<!-- {name}: written by python -m {module} -->", f"<!-- /{name} -->"


# Every owned section, in the order a full report keeps them.
SECTIONS = {name: markers(name, module) for name, module in (
    ("dynamic", "bench.dynamic"), ("dynamic-portraits", "bench.dynamic"), ("robustness", "bench.robustness"),
    ("wild", "bench.wild"), ("detectors", "bench.detectors"))}


def write_section(section: str, results_md: Path, begin: str, end: str) -> None:
    """Replace (or append) a benchmark's own section of RESULTS.md (between its begin and end markers),
    leaving the rest as it is."""
    text = results_md.read_text() if results_md.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip() + "\n\n" + section if text else section
    results_md.write_text(text)


def kept_sections(old: str) -> str:
    """The owned sections found in an old RESULTS.md, in SECTIONS order."""
    return "\n".join(old[old.index(begin) : old.index(end) + len(end)] + "\n"
                     for begin, end in SECTIONS.values() if begin in old and end in old)


def publish(results: dict, out: Path, json_name: str, section: str, begin: str, end: str) -> int:
    """A benchmark's results to OUT/json_name and its section of OUT/RESULTS.md, the section printed; status 0."""
    out.mkdir(parents=True, exist_ok=True)
    (out / json_name).write_text(json.dumps(results, indent=2) + "\n")
    write_section(section, out / "RESULTS.md", begin, end)
    print(section)
    return 0
