"""What a plan does to a frame, and the status that leaves it in a version: the one vocabulary
of the planner, the views, the pages and the manifests (a base module: it imports nothing).

    create      + a frame with no image yet
    regenerate  ~ a frame whose deciding inputs changed (reasons and a prompt diff)
    repair      ! the latest version's file is missing or its bytes changed: restored
                  from an older version holding the right bytes, else regenerated
    restore     < the image store (or the backend) holds the image its fingerprint asks
                  for: a reverted edit, a deleted out/, a fresh clone. No request, no cost
    hold        = an approved frame whose inputs changed: its approved image stays (see
                  `storyboard approve`); only --replace or unapprove lets it be made again
    remove      - a frame no longer in the project
    move        > unchanged, but its path in the version changes (frames reordered)
    keep          unchanged
"""

from __future__ import annotations

from enum import Enum


class Action(Enum):
    CREATE = "create"
    REGENERATE = "regenerate"
    REPAIR = "repair"
    RESTORE = "restore"
    HOLD = "hold"
    REMOVE = "remove"
    MOVE = "move"
    KEEP = "keep"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def status(self) -> str:
        """The frame's status in the version the action makes (manifest, pages, `show`)."""
        return _STATUS[self]

    @property
    def shown(self) -> bool:
        """Whether a plan lists it (everything but an unchanged frame)."""
        return self is not Action.KEEP

    @property
    def changes_output(self) -> bool:
        """Whether it makes a new version (a held frame alone does not)."""
        return self not in (Action.KEEP, Action.HOLD)


_SYMBOLS = {Action.CREATE: "+", Action.REGENERATE: "~", Action.REPAIR: "!", Action.RESTORE: "<",
            Action.HOLD: "=", Action.REMOVE: "-", Action.MOVE: ">", Action.KEEP: " "}
_STATUS = {Action.CREATE: "new", Action.REGENERATE: "regenerated", Action.REPAIR: "repaired",
           Action.RESTORE: "restored", Action.HOLD: "held", Action.REMOVE: "removed", Action.MOVE: "kept",
           Action.KEEP: "kept"}

MADE = frozenset({"new", "regenerated", "repaired", "restored"})  # frames put in a version anew
FAILED = "failed"  # the status of a frame whose action did not happen: it keeps its previous image
