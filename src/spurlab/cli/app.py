"""The ``spurlab`` entry point: registers the subcommands and turns errors into one line and an exit code."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from spurlab.errors import SpurlabError

app = typer.Typer(
    name="spurlab",
    help="Audit LoRA finetuning against Seamless Spurious Token Injection (SSTI).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each subcommand lives in its own module; importing it adds it to ``app``.
    from spurlab.cli import data_cmd  # noqa: F401


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a SpurlabError becomes ``error: <message>`` and its exit code (``--debug`` shows the trace)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("SPURLAB_DEBUG") == "1"
    if "--debug" in args:
        args.remove("--debug")
    try:
        app(args=args, prog_name="spurlab", standalone_mode=False)
    except SpurlabError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors are handled below; everything else is internal
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.Abort):
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        if debug:
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: internal failure: {type(exc).__name__}: {first} (re-run with --debug for the traceback)",
              file=sys.stderr)
        sys.exit(1)
