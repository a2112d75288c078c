"""The `storyboard` command: thin commands (commands.py) over the library, and views (views.py)."""

from storyboard.cli.commands import main

__all__ = ["main"]
