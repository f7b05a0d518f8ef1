"""The console script: ``spurlab`` imports the CLI and runs it; Ctrl-C even while importing is one line, 130."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from spurlab.cli.app import main as run
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    run()
