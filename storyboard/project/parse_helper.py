"""A second process that parses YAML files for `yamlsrc.read_all`: paths in, marshal out.

    python -m storyboard.project.parse_helper FILE...

Writes one marshal blob to stdout: a list with, per file, (sha256 of its bytes, marshal
of its parsed data) or (sha256, None) when it does not parse or marshal cannot hold it.
The caller parses those itself, so every error is still reported by one code path.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from pathlib import Path

import yaml

from storyboard.machine import tune_gc
from storyboard.project.yamlsrc import parse_text


def parse_files(names: list[str]) -> list[tuple[str, bytes | None]]:
    results: list[tuple[str, bytes | None]] = []
    for name in names:
        raw = Path(name).read_bytes()
        try:
            blob: bytes | None = marshal.dumps(parse_text(raw.decode("utf-8")))
        except (UnicodeDecodeError, yaml.YAMLError, ValueError):
            blob = None
        results.append((hashlib.sha256(raw).hexdigest(), blob))
    return results


if __name__ == "__main__":
    tune_gc()
    sys.stdout.buffer.write(marshal.dumps(parse_files(sys.argv[1:])))
