"""Asterisk's sounds directory as this machine sees it: which prompts exist in which language.

Asterisk plays `sound:NAME` to a channel whose language is LANG from SOUNDS/LANG/NAME.EXT, in any
format it has a module for; missing there, it falls back to SOUNDS/en and then to SOUNDS/NAME, so
a missing Russian prompt is heard in English without a word in any log. The lab's Asterisk runs
in a chroot whose symlinks are absolute inside it (sounds/en -> /etc/alternatives/...): paths are
resolved as Asterisk resolves them, under `root`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# File extensions of Asterisk's audio formats (format_*.so): any of them counts.
FORMATS = frozenset({"gsm", "ulaw", "ul", "pcm", "mu", "alaw", "al", "alw", "wav", "WAV", "wav16", "sln",
                     "raw", "sln8", "sln12", "sln16", "sln24", "sln32", "sln44", "sln48", "sln96", "sln192",
                     "g722", "g729", "g723", "g726-16", "g726-24", "g726-32", "g726-40", "ilbc", "siren7",
                     "siren14", "speex", "spx", "ogg", "opus", "vox"})
_MAX_LINKS = 40  # as the kernel's own limit on symlinks followed in one lookup


@dataclass(frozen=True)
class Missing:
    language: str
    sound: str
    where: str  # the setting that names it, or the feature that plays it

    def line(self) -> str:
        return f"{self.sound} ({self.language}), used by {self.where}"


class SoundsDir:
    """The sounds directory `path` (as Asterisk sees it) of an Asterisk whose `/` is `root` here."""

    def __init__(self, path: str, root: str = "") -> None:
        self.path = PurePosixPath(path)
        self.root = Path(root or "/")
        self._listed: dict[Path, frozenset[str]] = {}

    def exists(self) -> bool:
        return self.resolve(self.path).is_dir()

    def here(self) -> Path:
        """The directory as this machine reaches it."""
        return self.resolve(self.path)

    def has(self, language: str, sound: str) -> bool:
        """Whether SOUNDS/language/sound exists in any of Asterisk's formats."""
        full = self.path / language / sound
        names = self._names(self.resolve(full.parent))
        return any(f"{full.name}.{ext}" in names for ext in FORMATS)

    def languages(self) -> list[str]:
        """The language directories there (what a language may be set to)."""
        return sorted(n for n in self._names(self.here()) if self.resolve(self.path / n).is_dir())

    def missing(self, needed: Mapping[str, Mapping[str, str]]) -> list[Missing]:
        """Every needed sound that has no file in its language, by language then name."""
        return [Missing(language, sound, where) for language in sorted(needed)
                for sound, where in sorted(needed[language].items()) if not self.has(language, sound)]

    def _names(self, directory: Path) -> frozenset[str]:
        if directory not in self._listed:
            try:
                self._listed[directory] = frozenset(os.listdir(directory))
            except OSError:
                self._listed[directory] = frozenset()
        return self._listed[directory]

    def resolve(self, path: PurePosixPath) -> Path:
        """`path` (absolute, as Asterisk sees it) as this machine reaches it: every symlink followed
        as inside `root` (an absolute target starts again at root; '..' never climbs above it)."""
        parts = list(path.parts[1:] if path.is_absolute() else path.parts)
        here, links = self.root, 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                here = here.parent if here != self.root else here
                continue
            step = here / part
            if step.is_symlink() and links < _MAX_LINKS:
                links += 1
                target = PurePosixPath(os.readlink(step))
                parts = [*(target.parts[1:] if target.is_absolute() else target.parts), *parts]
                here = self.root if target.is_absolute() else here
                continue
            here = step
        return here


def refusal(missing: Iterable[Missing], sounds: SoundsDir) -> str:
    """The message listing what is missing, one line each."""
    lines = [m.line() for m in missing]
    return (f"{len(lines)} prompt(s) missing from Asterisk's sounds ({sounds.path}, here {sounds.here()}): "
            "callers of that language would hear another one (or nothing); add the files, or change "
            "the language:\n  " + "\n  ".join(lines))
