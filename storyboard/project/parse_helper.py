"""A second process that parses YAML files for `yamlsrc.read_all`: paths in, marshal out.

    python -m storyboard.project.parse_helper [--check] FILE...

Writes one marshal blob to stdout: a list with, per file, (sha256 of its bytes, marshal
of its parsed data, the key of the schema the data is valid against) or (sha256, None,
None) when it does not parse or marshal cannot hold it. The caller parses those itself,
so every error is still reported by one code path. With --check (included files) the
data is checked against the scene or character schema; a file it finds invalid is checked
again by the caller, which says what is wrong.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from pathlib import Path

import yaml

from storyboard.errors import ProjectError
from storyboard.machine import tune_gc
from storyboard.project.schema import document_schema, is_valid, schema_key
from storyboard.project.yamlsrc import check_expansion, parse_text


def parse_files(names: list[str], check: bool) -> list[tuple[str, bytes | None, str | None]]:
    """Per file: (sha256 of its bytes, marshal of its data or None, the key of the schema its data
    is valid against or None). `check`: the files are included ones (scenes, characters)."""
    results: list[tuple[str, bytes | None, str | None]] = []
    for name in names:
        raw = Path(name).read_bytes()
        blob: bytes | None = None
        valid: str | None = None
        try:
            text = raw.decode("utf-8")
            check_expansion(Path(name), text)  # as YamlFile does: aliases that expand past any size
            data = parse_text(text)
            blob = marshal.dumps(data)
            if check:
                schema = document_schema(data)
                valid = schema_key(schema) if is_valid(schema, data) else None
        except (UnicodeDecodeError, yaml.YAMLError, ValueError, ProjectError):
            pass
        results.append((hashlib.sha256(raw).hexdigest(), blob, valid))
    return results


if __name__ == "__main__":
    tune_gc()
    checking = sys.argv[1:2] == ["--check"]
    sys.stdout.buffer.write(marshal.dumps(parse_files(sys.argv[1 + checking:], checking)))
