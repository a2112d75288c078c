"""`storyboard approve` and `unapprove`: approvals recorded in storyboard.lock.

An approval names the approved image by its sha256 (and the fingerprint it was made
from), who gave it and when. It lives in the lockfile, so it is committed and reviewed
like any other change; the planner then holds the frame (see planner._decide_approved).
"""

from __future__ import annotations

import dataclasses
import datetime
import getpass
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from storyboard.errors import UserError
from storyboard.plans.planner import select_addresses
from storyboard.project.model import Project
from storyboard.state.lockfile import REVIEWER, Approval, Lock, write_lock
from storyboard.state.versions import version_name


def approve(project: Project, lock: Lock, addresses: Sequence[str], *, every: bool, by: str,
            version: tuple[int, Sequence[Mapping[str, Any]]] | None = None) -> dict[str, Approval]:
    """Approvals for the frames named (or `every` frame): of the images the lockfile names, or of
    those `version` (its number and its frames) holds. Writes nothing."""
    chosen = _chosen(project, lock, addresses, every, "approve")
    number, frames = version if version is not None else (lock.version, ())
    held = {str(f["address"]): (str(f["sha256"]), str(f["fingerprint"])) for f in frames} if version else \
        {address: (entry.image_sha256, entry.fingerprint) for address, entry in lock.frames.items()}
    missing = [address for address in chosen if address not in held]
    if missing:
        where = version_name(number) if version else "the latest version"
        raise UserError(f"cannot approve {missing[0]}: {where} has no image of it"
                        + (f" (nor of {len(missing) - 1} more)" if len(missing) > 1 else ""),
                        hint="run `storyboard apply` first, or name a version that holds it (--version)")
    at = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {address: Approval(*held[address], by, at, number) for address in chosen}


def unapprove(project: Project, lock: Lock, addresses: Sequence[str], *, every: bool) -> list[str]:
    """The approved frames among those named (or all of them); writes nothing."""
    chosen = _chosen(project, lock, addresses, every, "unapprove")
    return [address for address in chosen if address in lock.approvals]


def save(project: Project, lock: Lock, approvals: Mapping[str, Approval]) -> bool:
    """The lockfile with `approvals` in place of its own; False if nothing changed."""
    ordered = dict(sorted(approvals.items()))
    return write_lock(project.lockfile_path, dataclasses.replace(lock, approvals=ordered))


def _chosen(project: Project, lock: Lock, addresses: Sequence[str], every: bool, command: str) -> list[str]:
    if every == bool(addresses):
        raise UserError(f"{command} needs frame or scene addresses, or --all (not both)",
                        hint=f"e.g. `storyboard {command} morning/pour` or `storyboard {command} morning`")
    if every:
        return sorted({frame.address for frame in project.frames} | set(lock.frames))
    selected = select_addresses(project, lock, addresses, command)
    assert selected is not None
    order = {frame.address: position for position, frame in enumerate(project.frames)}
    return sorted(selected, key=lambda address: (order.get(address, len(order)), address))


def reviewer(project: Project, given: str | None) -> str:
    """Who approves: `--by`, else git's user.name <user.email> in the project, else the OS user."""
    if given is not None:
        if not REVIEWER.fullmatch(given.strip()):
            raise UserError(f"--by {given!r}: a name of 1 to 200 characters, without control characters",
                            hint='for example --by "Ana Director <ana@example.com>"')
        return given.strip()
    name, email = _git_config(project, "user.name"), _git_config(project, "user.email")
    found = f"{name} <{email}>" if name and email else name or email or getpass.getuser()
    cleaned = "".join(char for char in found if char.isprintable())[:200].strip()
    return cleaned or "unknown"


def _git_config(project: Project, key: str) -> str:
    try:
        result = subprocess.run(["git", "config", "--get", key], cwd=project.root, capture_output=True,
                                text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""
