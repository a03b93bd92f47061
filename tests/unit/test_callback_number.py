"""The number a caller asking for a callback is called back at, as the caller goes through it
with their keys."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hotline.engine.callback_number import ask_number, spoken_digits
from hotline.engine.routing.outbound import may_dial
from hotline.provision.model import Trunk

TRUNK = Trunk("carrier", "sipp-carrier", "+74951234567", ("+7495", "+7916"))


class HungUp(Exception):
    """The caller's keys ran out while a key was still awaited."""


@dataclass
class Caller:
    """Keys pressed in order; a key given as '>1' is pressed during the next interruptible prompt."""

    keys: list[str | None]
    channel_id: str = "test-channel"
    played: list[str] = field(default_factory=list)

    async def play(self, media: str, *, stop_on_digit: bool = False) -> str | None:
        self.played.append(media)
        if stop_on_digit and self.keys and (self.keys[0] or "").startswith(">"):
            return (self.keys.pop(0) or "")[1:]
        return None

    async def digit(self, timeout: float) -> str | None:
        if not self.keys:
            raise HungUp
        return self.keys.pop(0)


def read_back(digits: str) -> str:
    """The read-back's playlist: one digit file per digit (a playlist a key can stop)."""
    return ",".join(f"sound:digits/{digit}" for digit in digits)


def allowed(number: str) -> bool:
    return may_dial(TRUNK, number)


async def ask(caller_id: str | None, *keys: str | None) -> tuple[str | None, Caller]:
    caller = Caller(list(keys))
    return await ask_number(caller, caller_id, allowed, "RU"), caller


async def test_a_caller_confirms_their_own_number_with_1() -> None:
    number, caller = await ask("89161234567", "1")
    assert number == "+79161234567"
    assert caller.played == ["sound:vm-num-i-have", read_back("79161234567"), "sound:if-correct-press",
                             "sound:digits/1"]


async def test_pressing_1_while_the_number_is_read_back_confirms_at_once() -> None:
    number, caller = await ask("+79161234567", ">1")
    assert number == "+79161234567" and caller.played == ["sound:vm-num-i-have"]


async def test_another_key_lets_them_type_a_number_ended_by_hash_and_confirm_it() -> None:
    number, caller = await ask("+79161234567", "2", *"84957654321", "#", "1")
    assert number == "+74957654321"
    assert caller.played[4:] == ["sound:vm-enter-num-to-call", "sound:vm-then-pound", "sound:you-entered",
                                 read_back("74957654321"), "sound:if-correct-press", "sound:digits/1"]


def test_the_read_back_is_a_playlist_of_digit_files_which_a_key_can_stop() -> None:
    # not `digits:NUMBER`, which Asterisk refuses to stop (a key then waited for its end)
    assert spoken_digits("+79161234567") == read_back("79161234567")
    assert spoken_digits("+79161234567").count("sound:digits/") == 11


async def test_typing_may_start_during_the_prompt() -> None:
    number, _ = await ask(None, ">8", *"4957654321", "#", "1")
    assert number == "+74957654321"


@pytest.mark.parametrize("caller_id", [None, "", "anonymous", "+78095551234", "+12125550100"])
async def test_a_caller_id_that_cannot_be_called_back_is_not_offered(caller_id: str | None) -> None:
    number, caller = await ask(caller_id, *"89161234567", "#", "1")
    assert number == "+79161234567"
    assert "sound:vm-num-i-have" not in caller.played and caller.played[0] == "sound:vm-enter-num-to-call"


async def test_a_typed_number_outside_the_trunks_is_refused_and_asked_again() -> None:
    number, caller = await ask(None, *"88095551234", "#", *"84957654321", "#", "1")
    assert number == "+74957654321"
    assert caller.played.count("sound:pm-invalid-option") == 1
    assert read_back("78095551234") not in caller.played  # never read back as if it would be called


async def test_three_failed_tries_end_with_no_number() -> None:
    number, caller = await ask("+79161234567", "2", *"123", "#", None)
    assert number is None
    assert caller.played[-1] == "sound:pm-invalid-option"
    assert caller.played.count("sound:pm-invalid-option") == 2  # '123', then no key at all


async def test_typing_stops_at_the_longest_e164_number() -> None:
    number, caller = await ask(None, *("9" * 20), None, None)
    assert number is None and caller.played[-1] == "sound:pm-invalid-option"
    # 15 nines, then the 5 left as the next try (ended by a pause), then a try with no key at all
    assert caller.played.count("sound:pm-invalid-option") == 3
