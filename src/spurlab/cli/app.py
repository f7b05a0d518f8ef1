"""The ``spurlab`` entry point: registers the subcommands and turns errors into one line and an exit code."""

from __future__ import annotations

import importlib
import os
import sys
import traceback

# OpenMP threads that spin while waiting collapse throughput when another process shares the cores (see
# docs/performance.md, "Where the time goes"); set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer

from spurlab.errors import SpurlabError

app = typer.Typer(
    name="spurlab",
    help="Audit LoRA finetuning against Seamless Spurious Token Injection (SSTI).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


MAX_MESSAGE = 300  # characters of an error line: long paths fit, a dump of a whole column does not

# Each subcommand lives in its own module; importing it adds it to ``app``.
COMMAND_MODULES = ("data_cmd", "inject_cmd", "run_cmd", "demo_cmd", "scan_cmd", "sanitize_cmd", "diagnose_cmd",
                   "sweep_cmd", "figures_cmd", "paraphrase_cmd", "report_cmd", "budget_cmd", "normalize_cmd",
                   "stealth_cmd", "defend_cmd", "arena_cmd", "audit_cmd")


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"spurlab.cli.{name}")


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a SpurlabError becomes ``error: <message>`` and its exit code (``--debug`` shows the trace)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("SPURLAB_DEBUG") == "1"
    if "--debug" in args:
        args.remove("--debug")
    try:
        code = app(args=args, prog_name="spurlab", standalone_mode=False)
    except SpurlabError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        if _is_usage_error(exc):
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                print(f"error: {exc.format_message()} (see 'spurlab --help')", file=sys.stderr)  # type: ignore[attr-defined]
            sys.exit(2)
        if type(exc).__name__ == "Abort":
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        if debug:
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: internal failure: {type(exc).__name__}: {first} (re-run with --debug for the traceback)",
              file=sys.stderr)
        sys.exit(1)
    # without standalone mode typer *returns* the code of an Exit it raised: 130 for Ctrl-C
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        if code == 130:
            print("error: interrupted", file=sys.stderr)
        sys.exit(code)


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line of at most ``limit`` characters (a long one keeps its start and its end)."""
    text = " ".join(message.split())
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 2
    return f"{text[:keep]} ... {text[-keep:]}"


def _is_usage_error(exc: BaseException) -> bool:
    """Click's (or typer's vendored click's) usage errors: a bad option, a missing argument, no arguments."""
    return any(cls.__name__ == "UsageError" for cls in type(exc).__mro__) and hasattr(exc, "format_message")
