"""`hotline case listen|whisper|barge CASE SUPERVISOR`: a supervisor into a live talk.

Thin: the CLI checks what the database can say (the case, its live talk, the supervisor and its
flag), asks the daemon that runs the talk by an ARI user event (as `hotline case transfer` does),
and waits on the request's row of supervisions for the daemon's word: refused (busy, supervising
already, no live talk any more), then answered or not. The asking and waiting are
engine.supervision_request's, which the agent page uses too."""

from __future__ import annotations

import click
from psycopg import AsyncConnection

from hotline.cli.cases import CASE_ID, case_group
from hotline.cli.common import run_with_db, settings_of
from hotline.config import Settings
from hotline.errors import AriError, AriNotFound, SupervisionRefused
from hotline.store import provisioning


def _command(mode: str, summary: str) -> None:
    @case_group.command(mode, help=f"{summary} The daemon rings SUPERVISOR's phone (an agent with "
                        "`supervisor = true`); it ends when they hang up or the talk ends. Refused "
                        "(exit 1, one line why) for a case with no live talk, an unknown or unflagged "
                        "supervisor, or one busy in a call or supervising already.")
    @CASE_ID
    @click.argument("supervisor")
    @click.pass_context
    def command(ctx: click.Context, case_id: int, supervisor: str) -> None:
        click.echo(supervise(ctx, case_id, supervisor, mode))


_command("listen", "SUPERVISOR listens to case CASE_ID's live talk: hears both sides, heard by nobody.")
_command("whisper", "SUPERVISOR coaches the agent of case CASE_ID's live talk: heard by the agent only.")
_command("barge", "SUPERVISOR joins case CASE_ID's live talk: all three hear each other.")


def supervise(ctx: click.Context, case_id: int, supervisor: str, mode: str) -> str:
    settings = settings_of(ctx)
    settings.require("dsn", "ari_url")

    async def go(conn: AsyncConnection) -> str:
        agent = (await provisioning.load(conn)).agents.get(supervisor)
        if agent is None:
            raise SupervisionRefused(f"there is no agent {supervisor!r} (see `hotline agent list`)")
        if not agent.supervisor:
            raise SupervisionRefused(f"agent {supervisor!r} is not a supervisor "
                                     f"(`hotline agent set {supervisor} --supervisor`)")
        return await _ask(settings, conn, case_id, mode, supervisor)

    return run_with_db(ctx, go)


async def _ask(settings: Settings, conn: AsyncConnection, case_id: int, mode: str, supervisor: str) -> str:
    # Here, not at the top: every `hotline case` command loads this module (hotline.cli).
    from hotline.cli.node_ari import ari_for_case
    from hotline.engine.supervision_request import ask, look_on, outcome_said
    ari = await ari_for_case(conn, settings, case_id)  # the node of the case's live talk
    try:
        request = await ask(conn, lambda channel_id: ari, settings.ari_app, case_id, mode, supervisor, "cli")
    except AriNotFound:  # the app: Asterisk has none of that name while no daemon is connected
        raise SupervisionRefused(f"case {case_id}: no daemon serves Stasis app {settings.ari_app!r} "
                                 f"(is `hotline run` running?)") from None
    except AriError as exc:  # Asterisk unreachable, or the channel ended a moment ago (422)
        raise SupervisionRefused(f"case {case_id}: the request did not reach the daemon ({exc})") from None
    finally:
        await ari.close()
    return await outcome_said(look_on(conn), request, case_id, mode, supervisor)
