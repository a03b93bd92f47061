"""What every click command shares: settings from the context, and errors as one clear line."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hotline.config import Settings, load_settings
from hotline.errors import HotlineError

F = TypeVar("F", bound=Callable[..., Any])


def clear_errors(func: F) -> F:
    """Every HotlineError becomes one line on stderr and exit 1, never a traceback."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HotlineError as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper  # type: ignore[return-value]


def settings_of(ctx: click.Context) -> Settings:
    """Settings from the layers, with the root command's options on top."""
    root = ctx.find_root()
    try:
        return load_settings(root.obj["cli"], config_file=root.obj["config_file"])
    except HotlineError as exc:
        raise click.ClickException(str(exc)) from None
