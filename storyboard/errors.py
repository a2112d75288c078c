"""Errors raised by storyboard on purpose.

    StoryboardError            root of every error raised on purpose
     ├── UserError             a mistake in the user's files or command line:
     │    │                    printed as-is (no traceback), exit code 1; a `location`
     │    │                    (file:line:col) where a file is at fault
     │    ├── ProjectError     one or more Diagnostics, each with file:line:col
     │    ├── LockfileError    a corrupt, hand-mangled or newer lockfile
     │    ├── ManifestError    a version's manifest that cannot be read
     │    ├── PlanError        a saved plan that is stale or unreadable
     │    └── RunLockedError   another apply is running on the same project
     └── ProviderError         a provider could not do what was asked; `retryable`:
          │                    asking again later may help (a job it names may still finish)
          ├── AuthError        the service refused our credentials or balance
          └── JobLost          the service does not know a submitted job (any more)

Anything else that escapes is a bug in storyboard and keeps its traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a user's file; line and col are 1-based."""

    file: Path
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        name = display_path(self.file)
        if self.line <= 0:
            return name
        return f"{name}:{self.line}:{self.col}"


class Origin(Protocol):
    """Where a model object was written, resolved to a Location only when an error needs it.

    The model keeps one per object without knowing the file format behind it (YAML today).
    """

    def at(self, *sub: str | int, key: bool = False) -> Location:
        """The position of `sub` (a key path below the object), or of its key with key=True."""
        ...

    def crumb(self, *sub: str | int) -> str:
        """A breadcrumb such as `scenes[2].frames[4].shot`."""
        ...

    def child(self, *sub: str | int) -> Origin:
        """The origin of a value below this one."""
        ...


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a project, shown as `file:line:col: crumb: message`."""

    message: str
    location: Location | None = None
    crumb: str = ""
    hint: str = ""

    def format(self) -> str:
        parts = [str(self.location)] if self.location else []
        if self.crumb:
            parts.append(self.crumb)
        parts.append(self.message)
        text = ": ".join(parts)
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


def display_path(path: Path) -> str:
    """A path as the user should read it: relative to the working folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


class StoryboardError(Exception):
    """Root of every error storyboard raises on purpose."""


class UserError(StoryboardError):
    """A mistake of the user's: shown without a traceback, exit code 1."""

    def __init__(self, message: str, hint: str = "", location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location

    def format(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else f"error: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class ProjectError(UserError):
    """The project's files have one or more problems, all reported at once."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        count = len(self.diagnostics)
        summary = f"{count} error{'s' if count != 1 else ''} in the project"
        super().__init__(summary)

    def format(self) -> str:
        lines = [diagnostic.format() for diagnostic in self.diagnostics]
        lines.append(self.message)
        return "\n".join(lines)


class LockfileError(UserError):
    """storyboard.lock cannot be read."""


class ManifestError(UserError):
    """A version's manifest.json or scene.json cannot be read."""


class PlanError(UserError):
    """A saved plan cannot be applied."""


class RunLockedError(UserError):
    """Another `apply` holds the project's run lock."""


class ProviderError(StoryboardError):
    """A provider failed to produce what was asked; `retryable` says if asking again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class AuthError(ProviderError):
    """The service refused the key or the balance: stop submitting, collect what was submitted."""


class JobLost(ProviderError):
    """The service answers that a job it accepted does not exist (expired, or never stored).

    A run that finds a journaled job lost submits its frames again; nothing was delivered.
    """
