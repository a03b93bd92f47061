"""`hotline case listen|whisper|barge CASE SUPERVISOR`: a supervisor into a live talk.

Thin: the CLI checks what the database can say (the case, its live talk, the supervisor and its
flag), asks the daemon that runs the talk by an ARI user event (as `hotline case transfer` does),
and waits on the request's row of supervisions for the daemon's word: refused (busy, supervising
already, no live talk any more), then answered or not."""

from __future__ import annotations

import click
from psycopg import AsyncConnection

from hotline.asterisk.ari import AriClient
from hotline.cli.cases import CASE_ID, case_group
from hotline.cli.common import run_with_db, settings_of
from hotline.config import Settings
from hotline.engine.supervision import RING_TIMEOUT_S, ask_supervision
from hotline.errors import AriError, AriNotFound, SupervisionRefused
from hotline.store import provisioning
from hotline.store.supervisions import supervision_outcome

TAKEN_PATIENCE_S = 10.0  # how long the CLI waits for the daemon to take (or refuse) the request
ANSWER_PATIENCE_S = RING_TIMEOUT_S + 10.0  # ... and then for the supervisor's phone to answer

SAYS = {  # what the CLI says once the supervisor is in
    "listen": "case {case}: {who} listens (the customer and the agent do not hear them)",
    "whisper": "case {case}: {who} whispers to the agent (the customer does not hear them)",
    "barge": "case {case}: {who} barged in (all three hear each other)",
}


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
        channel_id = await live_talk_channel(conn, case_id)
        request = await _ask(settings, channel_id, case_id, mode, supervisor)
        await conn.commit()
        return await _outcome(conn, request, case_id, mode, supervisor)

    return run_with_db(ctx, go)


async def _outcome(conn: AsyncConnection, request: str, case_id: int, mode: str, supervisor: str) -> str:
    taken = await supervision_outcome(conn, request, TAKEN_PATIENCE_S)
    if taken is None:
        raise SupervisionRefused(f"case {case_id}: no daemon took the request within "
                                 f"{TAKEN_PATIENCE_S:.0f} s (is `hotline run` running?)")
    if taken.outcome == "refused":
        raise SupervisionRefused(f"case {case_id}: {mode} refused: {taken.detail}")
    done = await supervision_outcome(conn, request, ANSWER_PATIENCE_S, past=("ringing",))
    if done is None or done.outcome == "unanswered":
        why = done.detail if done is not None else "no answer"
        raise SupervisionRefused(f"case {case_id}: {supervisor} did not take the {mode}: {why}")
    if done.outcome == "ended":
        return f"case {case_id}: {supervisor}'s {mode} already ended: {done.detail}"
    return SAYS[mode].format(case=case_id, who=supervisor)


async def live_talk_channel(conn: AsyncConnection, case_id: int) -> str:
    """The customer's channel of case `case_id`'s live talk with an agent."""
    cur = await conn.execute(
        "SELECT h.channel_id, h.answered_at IS NOT NULL AND h.agent_id IS NOT NULL AND h.ended_at IS NULL"
        " FROM cases c LEFT JOIN LATERAL (SELECT * FROM hops WHERE case_id = c.id AND ended_at IS NULL"
        " ORDER BY seq DESC LIMIT 1) h ON true WHERE c.id = %s", (case_id,))
    row = await cur.fetchone()
    if row is None:
        raise SupervisionRefused(f"case {case_id} does not exist")
    if not row[1]:
        raise SupervisionRefused(f"case {case_id} has no live talk with an agent")
    return str(row[0])


async def _ask(settings: Settings, channel_id: str, case_id: int, mode: str, supervisor: str) -> str:
    ari = AriClient(settings.ari)
    try:
        return await ask_supervision(ari, settings.ari_app, channel_id, case_id, mode, supervisor, "cli")
    except AriNotFound:  # the app: Asterisk has none of that name while no daemon is connected
        raise SupervisionRefused(f"case {case_id}: no daemon serves Stasis app {settings.ari_app!r} "
                                 f"(is `hotline run` running?)") from None
    except AriError as exc:  # Asterisk unreachable, or the channel ended a moment ago (422)
        raise SupervisionRefused(f"case {case_id}: the request did not reach the daemon ({exc})") from None
    finally:
        await ari.close()



