"""The pages' texts in every language they speak.

One JSON catalogue per language (hotline/web/i18n/LANG.json): a flat object of key -> text, the
same keys in every catalogue (tests/unit/test_page_texts.py checks that, and that every key the
templates and scripts use is there). Templates say `{{ _("key") }}`; the pages' scripts read the
page's catalogue from `<script id="hotline-texts" type="application/json">` and say `T("key")`.
A text may hold `{name}` fields, filled by `text(..., name=value)` or by `T("key", {name: v})`.

Which language a page speaks: the hotline's own language when the pages have a catalogue for it,
else the first of the browser's Accept-Language (by its q weights) that they have, else English."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

CATALOGUE_DIR = Path(__file__).parent / "i18n"
FALLBACK = "en"


@cache
def languages() -> tuple[str, ...]:
    """The languages the pages speak: one catalogue file each, the fallback first."""
    found = sorted(path.stem for path in CATALOGUE_DIR.glob("*.json"))
    return (FALLBACK, *(lang for lang in found if lang != FALLBACK))


@cache
def catalogue(language: str) -> Mapping[str, str]:
    """Every text of the pages in `language` (a language the pages do not speak: KeyError)."""
    if language not in languages():
        raise KeyError(f"the pages have no texts in {language!r}")
    texts = json.loads((CATALOGUE_DIR / f"{language}.json").read_text(encoding="utf-8"))
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise ValueError(f"{language}.json is not an object of texts")
    return texts


def text(language: str, key: str, **fields: object) -> str:
    """One text in `language`, its `{name}` fields filled from `fields`."""
    template = catalogue(language)[key]
    return template.format_map(fields) if fields else template


def texts_of(language: str, prefixes: str | tuple[str, ...]) -> dict[str, str]:
    """The texts of `language` whose keys start with one of `prefixes` (a page's own, for its
    scripts: a page carries no other page's texts)."""
    return {key: value for key, value in catalogue(language).items() if key.startswith(prefixes)}


def accepted_languages(header: str | None) -> list[str]:
    """The primary language tags of an Accept-Language header, most wanted first (RFC 9110
    12.5.4: q weights, equal weights in the header's order; q=0 means "not this one")."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            weighted.append((-weight, position, tag.split("-", 1)[0]))
    ordered: list[str] = []
    for _, _, primary in sorted(weighted):
        if primary not in ordered:
            ordered.append(primary)
    return ordered


def page_language(hotline_language: str | None, accept_language: str | None) -> str:
    """The language a page speaks: the hotline's (when the pages have it), else the browser's
    first that they have, else the fallback."""
    spoken = languages()
    if hotline_language:
        primary = hotline_language.lower().split("-", 1)[0].split("_", 1)[0]
        if primary in spoken:
            return primary
    for wanted in accepted_languages(accept_language):
        if wanted in spoken:
            return wanted
    return FALLBACK
