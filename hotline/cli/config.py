"""`hotline config show|example`: the settings in effect and where each came from; the example
settings file (/etc/hotline/hotline.toml), shipped in the package."""

from __future__ import annotations

import json
from importlib import resources

import click

from hotline.cli.common import settings_of
from hotline.config import effective

EXAMPLE = "config_example.toml"


@click.group("config")
def config_group() -> None:
    """The settings: what is in effect, and an example file listing every one."""


@config_group.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def show(ctx: click.Context, fmt: str) -> None:
    """Every setting in effect, secrets masked, and where it came from (default, file,
    environment, option). Exit 1, after the list, when the settings are not valid."""
    root = ctx.find_root()
    rows = effective(root.obj["cli"], config_file=root.obj["config_file"])
    if fmt == "json":
        click.echo(json.dumps([{"name": r.name, "value": r.value, "source": r.source} for r in rows],
                              indent=2))
    else:
        width = max(len(r.name) for r in rows)
        for r in rows:
            click.echo(f"{r.name:<{width}}  {json.dumps(r.value, ensure_ascii=False)}  ({r.source})")
    settings_of(ctx)  # checked as every command checks them: a bad value is the one line after the list


@config_group.command()
def example() -> None:
    """Print the example settings file: every setting, commented out, with its default
    (hotline config example > /etc/hotline/hotline.toml)."""
    click.echo(resources.files("hotline").joinpath(EXAMPLE).read_text(encoding="utf-8"), nl=False)
