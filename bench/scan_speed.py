"""Scan speed only: ``spurlab scan`` on 1M tweet-length rows vs the pure-Python ``Counter`` scan.

Run: ``python -m bench.scan_speed [--rows 1000000] [--subsample 20000] [--repeats 3]``. Updates the ``speed``
entry of ``bench/results/detection.json`` and the "Scan speed" section of ``bench/results/detection.md``
(the rest of those files comes from ``python -m bench.detection`` and is left as it is).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from bench.detection import RESULTS, speed, speed_markdown  # noqa: E402
from spurlab.atomic import write_json, write_text  # noqa: E402


def replace_section(markdown: str, section: list[str]) -> str:
    """``markdown`` with its "## Scan speed" section (up to the next ``## `` heading) replaced or appended."""
    lines = markdown.rstrip("\n").split("\n") if markdown.strip() else []
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Scan speed"), None)
    if start is None:
        lines += ["", *section]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = [*section, ""] if end < len(lines) else section
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--subsample", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = speed(args.rows, min(args.subsample, args.rows), args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / "detection.json", args.out / "detection.md"
    data = json.loads(json_path.read_text()) if json_path.exists() else {}
    data["speed"] = result
    write_json(json_path, data)
    section = speed_markdown(result)
    write_text(md_path, replace_section(md_path.read_text() if md_path.exists() else "", section))
    print("\n".join(section))


if __name__ == "__main__":
    main()
