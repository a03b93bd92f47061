"""A hotline's customer page, as provisioning gives it: the name it shows, a short text, a logo and
an accent colour (hotlines.page_* of migration 040; the page: hotline.web.app).

The logo is an https URL, never a local path: the daemon serves no files of the deployment's,
and the page lets the browser load images from that URL's origin only (its Content-Security-
Policy). Each value may be cleared with "none" or "" (the page's own look)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from hotline.errors import ProvisionError

TITLE_LIMIT = 80
TEXT_LIMIT = 300
LOGO_LIMIT = 500
COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_CLEARED = (None, "", "none")
# What may not be in a URL the page puts in an attribute and its Content-Security-Policy.
_URL_BAD = re.compile(r"[\s\"'<>\\;,]")
# Refused in a title or text: control characters, line and paragraph separators, bidi controls
# (a no-break space, an emoji's joiner are fine).
_REFUSED = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _fail(field: str, value: object, why: str) -> ProvisionError:
    return ProvisionError(f"{field}: {value!r} {why}")


def _text(field: str, value: object, limit: int) -> str | None:
    if value in _CLEARED:
        return None
    if (not isinstance(value, str) or not value.strip() or len(value) > limit
            or any(unicodedata.category(c) in _REFUSED or c in _BIDI for c in value)):
        raise _fail(field, value, f"must be text of 1 to {limit} characters on one line, without "
                                  "control characters ('none' clears it)")
    return value.strip()


def page_title(field: str, value: object) -> str | None:
    """The name the customer page shows for the hotline (its heading and the tab's title)."""
    return _text(field, value, TITLE_LIMIT)


def page_text(field: str, value: object) -> str | None:
    """A short text under the name: what the line is for, when it answers."""
    return _text(field, value, TEXT_LIMIT)


def page_logo(field: str, value: object) -> str | None:
    """An https URL of an image (no credentials in it, no quotes, spaces or angle brackets)."""
    if value in _CLEARED:
        return None
    why = "must be an https URL of an image (like 'https://example.ru/logo.svg'), at most " \
          f"{LOGO_LIMIT} characters ('none' clears it)"
    if not isinstance(value, str) or len(value) > LOGO_LIMIT or _URL_BAD.search(value):
        raise _fail(field, value, why)
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        raise _fail(field, value, why)
    return value


def page_color(field: str, value: object) -> str | None:
    """The accent colour as #RRGGBB (lower-cased)."""
    if value in _CLEARED:
        return None
    if not isinstance(value, str) or not COLOR.fullmatch(value):
        raise _fail(field, value, "must be a colour like '#1a73e8' (#RRGGBB; 'none' clears it)")
    return value.lower()


def logo_origin(url: str) -> str:
    """The origin the page may load the logo from (its Content-Security-Policy's img-src)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
