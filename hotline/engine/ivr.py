"""The IVR: a caller's way through the menus, as a FreePBX engineer would configure it.

How a menu runs (`run_menu`), step by step:

1. **Prompt.** The menu's `prompt` plays; a key pressed while it plays stops it and is taken at
   once (barge-in: regular callers need not listen to the whole greeting).
2. **Wait.** After the prompt the caller has `timeout` seconds to press a key.
3. **Valid key** (one of the menu's options): the key is recorded on the hop's IVR path, the
   option's own `prompt` plays if it has one (to the end: "connecting you to billing"), then:
   - `menu:X` enters menu X, with its retries fresh (so `"0" = "menu:main"` goes back);
   - `repeat` plays the current menu again; it is the caller's choice, not a failed attempt, so it
     counts no retry;
   - `language:LANG` switches the caller's language (the channel's CHANNEL(language): every prompt
     from now on, this key's own prompt included, plays from Asterisk's sounds/LANG, and numbers
     are said with that language's grammar); the key is recorded with its language on the hop.
     Then the caller goes where the key's `then` says (`menu:main`, `queue:support`, ...), or,
     without one, hears the same menu again in the new language, its retries fresh;
   - anything else (`queue:...`, `hotline:...`, `hangup`, `video:...`, `callback:...`) leaves the IVR:
     `run_menu` returns that target and the call follows it.
   A key to a menu, queue, hotline or video:QUEUE may carry a priority: from then on the caller waits in
   queues with it (the most specific wins: a key's over a region route's over the number's).
4. **Invalid key**: recorded on the IVR path too (the path shows what the caller really pressed),
   `invalid_prompt` plays (default `pm-invalid-option`, "That option is invalid. Please try
   again."), and the attempt counts as failed.
5. **No key** within the timeout: `timeout_prompt` plays if the menu has one (else silence), and
   the attempt counts as failed.
6. **Retries.** A menu allows `retries` failed attempts after the first, so 1 + retries attempts
   in all (FreePBX's "Invalid Retries" / "Timeout Retries", counted together here). After a failed
   attempt with retries left, the menu prompt plays again. When they are used up the caller hears
   `vm-goodbye` and the result is `hangup`.

Prompts are Asterisk sound names as provisioned (`hello-world`, `hotline/welcome`) and play as
`sound:NAME`. Only the menu prompt is interruptible; a key pressed during an option, invalid or
timeout prompt is not heard. Nested menus are a loop over the current menu, not recursion, so a
caller bouncing between menus costs nothing. Each step is logged once, in `_step`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from hotline.engine import built_in_prompts as prompts
from hotline.errors import UnknownMenu
from hotline.provision.model import Menu, MenuOption, Target, TargetAction

log = logging.getLogger(__name__)

# Both are in Asterisk's core sounds, so every installation has them; FreePBX's usual
# `option-is-invalid` is not among them (Debian's Asterisk 22 has no such file).
INVALID_PROMPT = prompts.INVALID_KEY
GOODBYE = prompts.sound(prompts.GOODBYE)
HANGUP = Target("hangup")


class CallIO(Protocol):
    """What the IVR needs of a call (hotline.engine.call.InboundCall provides it)."""

    @property
    def channel_id(self) -> str: ...

    async def play(self, media: str, *, stop_on_digit: bool = False) -> str | None:
        """Play `media` (answering first); with stop_on_digit the key that stopped it, else None."""
        ...

    async def digit(self, timeout: float) -> str | None:
        """The next key pressed within `timeout` seconds, or None."""
        ...


class MenuIO(CallIO, Protocol):
    """What a menu needs of a call beyond CallIO: switching its language (a `language:` key)."""

    async def choose_language(self, language: str, digit: str) -> None:
        """The caller chose `language` with key `digit`: the channel's language from now on, and
        the key recorded with it."""
        ...


async def run_menu(io: MenuIO, menus: Mapping[str, Menu], start: Target,
                   pressed: Callable[[str], Awaitable[None]],
                   chose: Callable[[MenuOption], None] = lambda option: None) -> Target:
    """Run the caller through the menus from `start` (a `menu:NAME` target) and return where they
    chose to go, or `hangup` when a menu's retries are used up. `pressed` records every key;
    `chose` hears of every valid one (its option sets the caller's priority, if it has one)."""
    if start.action != "menu":
        return start
    menu, failures = _menu(menus, start), 0
    _step(io, menu, None, f"enter (timeout {menu.timeout} s, retries {menu.retries})")
    while True:
        key = await io.play(sound(menu.prompt), stop_on_digit=True) or await io.digit(menu.timeout)
        option = _option(menu, key)
        if option is not None and option.target.action == TargetAction.LANGUAGE and option.target.name:
            _step(io, menu, key, f"language {option.target.name}")
            await io.choose_language(option.target.name, option.digit)
            failures = 0
        elif key is not None:
            await pressed(key)
        if option is None:
            failures += 1
            if not await _failed(io, menu, key, failures):
                return HANGUP
            continue
        chose(option)
        if option.prompt:
            await io.play(sound(option.prompt))
        leads = option.leads_to
        if leads.action == TargetAction.REPEAT:
            _step(io, menu, key, "repeat")
        elif leads.action == TargetAction.MENU:
            _step(io, menu, key, str(leads))
            menu, failures = _menu(menus, leads), 0
        else:
            _step(io, menu, key, f"leave to {leads}")
            return leads


async def _failed(io: CallIO, menu: Menu, key: str | None, failures: int) -> bool:
    """A failed attempt: tell the caller why (an invalid key always, silence only if provisioned).
    False when it was the last attempt: the caller has heard goodbye."""
    what = "invalid" if key is not None else "no key"
    _step(io, menu, key, f"{what} (attempt {failures} of {1 + menu.retries})")
    prompt = (menu.invalid_prompt or INVALID_PROMPT) if key is not None else menu.timeout_prompt
    if prompt:
        await io.play(sound(prompt))
    if failures <= menu.retries:
        return True
    _step(io, menu, key, "retries used up: goodbye")
    await io.play(GOODBYE)
    return False


def _option(menu: Menu, key: str | None) -> MenuOption | None:
    return next((o for o in menu.options if o.digit == key), None) if key is not None else None


def _menu(menus: Mapping[str, Menu], target: Target) -> Menu:
    try:
        return menus[target.name or ""]
    except KeyError:
        raise UnknownMenu(f"IVR: no menu named {target.name!r}") from None


def _step(io: CallIO, menu: Menu, key: str | None, what: str) -> None:
    """The one place the IVR logs: every step of every caller, one line each."""
    log.info("call %s: menu %s%s: %s", io.channel_id, menu.name, f" key {key}" if key else "", what)


def sound(name: str) -> str:
    """A provisioned sound name as an ARI media URI."""
    return f"sound:{name}"
