"""The CLI shell: exit codes, one-line errors, --debug, help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import run_cli


@pytest.mark.parametrize("args", [["data"], ["data", "bundled:tweets", "--bogus"],
                                  ["data", "bundled:tweets", "--test-size", "abc"], ["no-such-command"]])
def test_usage_errors_exit_2_with_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_data_error_is_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["data", "missing.csv"], capsys)
    assert code == 2
    assert err == "error: missing.csv: no such file\n"
    assert "Traceback" not in out + err


def test_debug_flag_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["data", "missing.csv", "--debug"], capsys)
    assert code == 2
    assert "Traceback" in err and err.rstrip().endswith("error: missing.csv: no such file")


def test_data_command_shows_the_label_map(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["data", "bundled:tweets", "--labels", "negative,positive", "--seed", "1"], capsys)
    assert code == 0
    assert "16198 train / 6942 test" in out
    assert "negative" in out and "11330" in out and "4868" in out


def test_console_script_is_installed() -> None:
    result = subprocess.run([sys.executable, "-m", "spurlab", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "inject" in result.stdout and "data" in result.stdout
