"""Telephone numbers as people type them -> E.164, with their kind (phonenumbers, region RU)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from hotline.errors import NumberError

DEFAULT_REGION = "RU"

# What a kind of number is called in provisioning, from phonenumbers' own classification.
_KINDS = {
    PhoneNumberType.FIXED_LINE: "city",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "city",
    PhoneNumberType.TOLL_FREE: "tollfree",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.VOIP: "voip",
}


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    kind: str  # city | tollfree | mobile | voip | other


def normalise(text: str, region: str = DEFAULT_REGION) -> PhoneNumber:
    """Parse what a person typed ('8 (495) 123-45-67', '+7 495 1234567', '8-800-555-35-35')."""
    if not isinstance(text, str) or not text.strip():
        raise NumberError(f"number {text!r} is empty")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise NumberError(f"number {text!r} contains control characters")
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise NumberError(f"number {text!r} is not a telephone number: {exc._msg}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise NumberError(f"number {text!r} is not a valid number")
    if parsed.extension:
        raise NumberError(f"number {text!r} has an extension ({parsed.extension}); hotlines take "
                          "the number alone")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return PhoneNumber(e164, _KINDS.get(phonenumbers.number_type(parsed), "other"))


# Every call looks up its dialled number and caller id several times within its first seconds;
# caller ids are mostly new ones, so a small cache serves those repeats and is full within a
# minute at 10 calls/s (at 4096 entries, a soak saw it fill for 7 minutes: RSS growing ~180 B a
# call, bounded, but read as a leak).
@lru_cache(maxsize=512)
def to_e164(text: str, region: str = DEFAULT_REGION) -> str | None:
    """E.164 of a dialled string or caller id, or None when it is no valid number (a SIP name)."""
    try:
        return normalise(text, region).e164
    except NumberError:
        return None
