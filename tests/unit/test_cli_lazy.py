"""The root command loads a command's module only when that command runs: `hotline agent login`
or `hotline case show` starts without aiohttp, jinja2 or the engine, and `hotline --help` still
lists every command."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from hotline.cli import LAZY_COMMANDS, main

HEAVY = ("aiohttp", "jinja2", "hotline.engine", "hotline.web")


def test_every_lazy_command_loads_under_its_own_name_and_the_help_lists_them_all() -> None:
    ctx = click.Context(main)
    for name in LAZY_COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
    helped = CliRunner().invoke(main, ["--help"])
    assert helped.exit_code == 0, helped.output
    lines = helped.output.split("Commands:\n", 1)[1].splitlines()
    listed = [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")]
    assert listed == sorted(LAZY_COMMANDS)


@pytest.mark.parametrize("command", [["agent", "login"], ["case", "show"]], ids=" ".join)
def test_a_command_starts_without_the_modules_of_the_others(command: list[str]) -> None:
    probe = ("import sys\n"
             "from hotline.cli import main\n"
             "try:\n"
             f"    main({[*command, '--help']!r})\n"
             "except SystemExit:\n"
             "    pass\n"
             f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Usage: -c {' '.join(command)}" in done.stdout, done.stdout
    assert done.stdout.splitlines()[-1] == "[]", done.stdout  # none of HEAVY loaded
