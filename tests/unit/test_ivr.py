"""The IVR state machine against a scripted caller: what they press, when, and what they hear."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hotline.engine.ivr import run_menu
from hotline.errors import UnknownMenu
from hotline.provision.model import Menu, MenuOption, Target

MAIN = Menu("main", prompt="main-prompt", timeout=2, retries=2, invalid_prompt="try-again",
            timeout_prompt="are-you-there", options=(
                MenuOption("0", Target("queue", "operator")),
                MenuOption("1", Target("queue", "support")),
                MenuOption("2", Target("menu", "billing")),
                MenuOption("3", Target("hangup"), prompt="thanks-bye"),
                MenuOption("*", Target("repeat")),
            ))
BILLING = Menu("billing", prompt="billing-prompt", retries=0, options=(
    MenuOption("0", Target("menu", "main")),
    MenuOption("1", Target("queue", "billing"), prompt="connecting-billing"),
))
MENUS = {"main": MAIN, "billing": BILLING}
START = Target("menu", "main")


@dataclass(frozen=True)
class Act:
    """One thing the caller does when the IVR listens: press `key` while the menu prompt plays
    (barge-in) or after it, or press nothing (key None) until the timeout."""

    key: str | None
    during_prompt: bool = False


def during(key: str) -> Act:
    return Act(key, during_prompt=True)


def after(key: str) -> Act:
    return Act(key)


NOTHING = Act(None)


class CallerHungUp(Exception):
    """The script ran out while the IVR still listened: the test would loop for ever otherwise."""


@dataclass
class ScriptedCaller:
    """A CallIO that follows a script and remembers every prompt played, in order."""

    script: list[Act]
    channel_id: str = "test-channel"
    played: list[str] = field(default_factory=list)
    interruptible: list[str] = field(default_factory=list)
    pressed: list[str] = field(default_factory=list)

    async def play(self, media: str, *, stop_on_digit: bool = False) -> str | None:
        self.played.append(media)
        if not stop_on_digit:
            return None
        self.interruptible.append(media)
        if self.script and self.script[0].during_prompt:
            return self.script.pop(0).key
        return None

    async def digit(self, timeout: float) -> str | None:
        if not self.script:
            raise CallerHungUp
        act = self.script.pop(0)
        assert not act.during_prompt, "a key scripted for the prompt was asked for after it"
        return act.key

    async def record(self, key: str) -> None:
        self.pressed.append(key)


async def run(*acts: Act, start: Target = START) -> tuple[Target, ScriptedCaller]:
    caller = ScriptedCaller(list(acts))
    target = await run_menu(caller, MENUS, start, caller.record)
    assert caller.script == [], f"the IVR stopped listening before the caller was done: {caller.script}"
    return target, caller


async def test_a_valid_key_after_the_prompt_leaves_to_its_target() -> None:
    target, caller = await run(after("1"))
    assert target == Target("queue", "support")
    assert caller.pressed == ["1"]
    assert caller.played == ["sound:main-prompt"]


async def test_a_key_pressed_during_the_prompt_is_taken_at_once() -> None:
    target, caller = await run(during("1"))
    assert target == Target("queue", "support")
    assert caller.pressed == ["1"]
    assert caller.played == ["sound:main-prompt"]


async def test_pressing_0_reaches_the_operator() -> None:
    target, _ = await run(during("0"))
    assert target == Target("queue", "operator")


async def test_an_invalid_key_is_recorded_and_the_menu_plays_again() -> None:
    target, caller = await run(after("9"), after("1"))
    assert target == Target("queue", "support")
    assert caller.pressed == ["9", "1"]
    assert caller.played == ["sound:main-prompt", "sound:try-again", "sound:main-prompt"]


async def test_no_input_plays_the_timeout_prompt_and_the_menu_again() -> None:
    target, caller = await run(NOTHING, after("1"))
    assert target == Target("queue", "support")
    assert caller.pressed == ["1"]
    assert caller.played == ["sound:main-prompt", "sound:are-you-there", "sound:main-prompt"]


async def test_without_a_timeout_prompt_no_input_is_met_with_silence() -> None:
    target, caller = await run(NOTHING, start=Target("menu", "billing"))
    assert caller.played == ["sound:billing-prompt", "sound:vm-goodbye"]  # retries = 0 there
    assert target == Target("hangup")


async def test_invalid_prompt_defaults_to_an_asterisk_core_sound() -> None:
    _, caller = await run(after("7"), start=Target("menu", "billing"))
    assert caller.played == ["sound:billing-prompt", "sound:pm-invalid-option", "sound:vm-goodbye"]


async def test_when_retries_are_used_up_the_caller_hears_goodbye_and_is_hung_up() -> None:
    target, caller = await run(NOTHING, after("9"), NOTHING)  # retries = 2: three attempts in all
    assert target == Target("hangup")
    assert caller.pressed == ["9"]
    assert caller.played == ["sound:main-prompt", "sound:are-you-there",
                             "sound:main-prompt", "sound:try-again",
                             "sound:main-prompt", "sound:are-you-there",
                             "sound:vm-goodbye"]


async def test_a_nested_menu_and_0_back_to_main_then_a_choice() -> None:
    target, caller = await run(after("2"), during("0"), after("1"))
    assert target == Target("queue", "support")
    assert caller.pressed == ["2", "0", "1"]
    assert caller.played == ["sound:main-prompt", "sound:billing-prompt", "sound:main-prompt"]


async def test_entering_a_menu_gives_it_fresh_retries() -> None:
    # Two failures in main, to billing and back: main allows three failures again.
    target, _ = await run(NOTHING, NOTHING, after("2"), after("0"), NOTHING, NOTHING, after("1"))
    assert target == Target("queue", "support")


async def test_repeat_plays_the_menu_again_without_using_a_retry() -> None:
    # retries = 2: had the repeats counted, the second silence would end the call.
    target, caller = await run(NOTHING, after("*"), after("*"), NOTHING, after("1"))
    assert target == Target("queue", "support")
    assert caller.pressed == ["*", "*", "1"]
    assert caller.played.count("sound:main-prompt") == 5


async def test_an_option_prompt_plays_to_the_end_before_the_caller_leaves() -> None:
    target, caller = await run(after("2"), after("1"))
    assert target == Target("queue", "billing")
    assert caller.played == ["sound:main-prompt", "sound:billing-prompt", "sound:connecting-billing"]
    assert "sound:connecting-billing" not in caller.interruptible


async def test_hangup_option_plays_its_prompt_and_returns_hangup() -> None:
    target, caller = await run(during("3"))
    assert target == Target("hangup")
    assert caller.played == ["sound:main-prompt", "sound:thanks-bye"]


async def test_a_target_that_is_not_a_menu_is_returned_untouched() -> None:
    target, caller = await run(start=Target("queue", "support"))
    assert target == Target("queue", "support") and caller.played == []


async def test_a_menu_missing_from_provisioning_is_a_clear_error() -> None:
    with pytest.raises(UnknownMenu, match="nowhere"):
        await run(start=Target("menu", "nowhere"))
