"""The number a caller asking for a callback will be called at: their caller id, confirmed with a
key, or one they type and confirm. Only a number some trunk may dial is taken (a caller cannot
make the hotline dial a premium or foreign number for them), so the callback never fails later
for want of a trunk.

The caller hears the number back digit by digit ("you entered 7 9 1 6 ..."), then "if correct,
press 1" (a key at any point answers); any other key, or none, lets them type another, ended
by #. Sounds are Asterisk's core sounds (present in every installation). Runs on the IVR's CallIO
seam, so it needs no call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hotline.engine import built_in_prompts as prompts
from hotline.engine.built_in_prompts import sound
from hotline.engine.ivr import CallIO
from hotline.numbers import to_e164

log = logging.getLogger(__name__)

ENTER_NUMBER = (sound(prompts.ENTER_NUMBER), sound(prompts.THEN_POUND))
NUMBER_IS = sound(prompts.NUMBER_IS)
YOU_ENTERED = sound(prompts.YOU_ENTERED)
IF_CORRECT = (sound(prompts.IF_CORRECT), sound("digits/1"))
INVALID = sound(prompts.INVALID_KEY)
CONFIRM_KEY = "1"
END_KEY = "#"
MAX_DIGITS = 15  # E.164's longest
KEY_TIMEOUT_S = 8.0
CONFIRM_TIMEOUT_S = 6.0
ATTEMPTS = 3


async def ask_number(io: CallIO, caller_id: str | None, may_call: Callable[[str], bool],
                     region: str) -> str | None:
    """The E.164 number the caller confirmed, or None (they gave up, or no number they gave may be
    called back; what they hear next is the caller's to say: back to waiting, or goodbye)."""
    own = _callable(caller_id, may_call, region)
    for attempt in range(1, ATTEMPTS + 1):
        number, intro = (own, NUMBER_IS) if own is not None else (
            _callable(await _typed(io), may_call, region), YOU_ENTERED)
        own = None  # offered once: a caller who says no types another
        if number is None:
            log.info("call %s: callback number refused (attempt %s of %s)", io.channel_id, attempt,
                     ATTEMPTS)
            await io.play(INVALID)
        elif await _confirmed(io, number, intro):
            log.info("call %s: callback number %s confirmed", io.channel_id, number)
            return number
    return None


def _callable(text: str | None, may_call: Callable[[str], bool], region: str) -> str | None:
    number = to_e164(text, region) if text else None
    return number if number is not None and may_call(number) else None


async def _typed(io: CallIO) -> str:
    """Keys up to # (or MAX_DIGITS, or a pause): what the caller typed, digits only."""
    key = None
    for media in ENTER_NUMBER:
        key = key or await io.play(media, stop_on_digit=True)
    digits = ""
    while len(digits) < MAX_DIGITS:
        key = key or await io.digit(KEY_TIMEOUT_S)
        if key is None or key == END_KEY:
            break
        if key.isdigit():
            digits += key
        key = None
    return digits


def spoken_digits(number: str) -> str:
    """The number's digits as one playback of the language's digit files. Not `digits:NUMBER`:
    Asterisk refuses to stop a `digits:` playback (HTTP 500), so a key pressed during the read-back
    had to wait for its end (eight seconds of an 11-digit number); a playlist of files stops."""
    return ",".join(f"sound:digits/{digit}" for digit in number if digit.isdigit())


async def _confirmed(io: CallIO, number: str, intro: str) -> bool:
    """The number read back; a key at any point of it answers (a caller who knows it is right
    need not hear it all, and a key is never lost in a prompt that cannot hear it)."""
    key = None
    for media in (intro, spoken_digits(number), *IF_CORRECT):
        key = key or await io.play(media, stop_on_digit=True)
    key = key or await io.digit(CONFIRM_TIMEOUT_S)
    return key == CONFIRM_KEY
