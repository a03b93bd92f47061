"""What the daemon says back through the pages' APIs, in a form every page can show in its own
language: a stable `code`, its `fields`, and the English text (`message` of an answer, `error` of
a refusal) that existing clients read. The text of code C is the catalogue's `said.C`
(hotline/web/i18n): the English one is the API's message, and a page shows its own language's
(hotline-phone.js and agent-desk.js: `said(answer)`), the English message for a code it has no
text for. tests/unit/test_page_texts.py checks every code the server sends has a text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hotline.errors import WebRefusal
from hotline.web import i18n

PREFIX = "said."  # the codes' keys in the catalogues

Field = str | int | float


@dataclass(frozen=True)
class Said:
    """One answer the daemon gives a page (a success: HTTP 200)."""
    code: str
    fields: Mapping[str, Field] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """The English text, as the API has always sent it."""
        return english(self.code, self.fields)

    def json(self) -> dict[str, object]:
        return {"message": self.message, "code": self.code, "fields": dict(self.fields)}


def said(code: str, **fields: Field) -> Said:
    english(code, fields)  # an unknown code or a missing field fails here, not on the page
    return Said(code, fields)


def refused(status: int, code: str, *, retry_after_s: float | None = None, **fields: Field) -> WebRefusal:
    """A refusal with its code: the API's JSON carries `error` (English), `code` and `fields`."""
    return WebRefusal(status, english(code, fields), retry_after_s, code=code, fields=fields)


def english(code: str, fields: Mapping[str, Field]) -> str:
    return i18n.text(i18n.FALLBACK, PREFIX + code, **fields)


def body_of(answer: Said | str) -> dict[str, object]:
    """An answer's JSON; a plain text (a backend that has no codes) is a message alone."""
    return answer.json() if isinstance(answer, Said) else {"message": answer}
