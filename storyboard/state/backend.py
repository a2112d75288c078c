"""The shared state of a team and its CI, on an object store (obstore: S3 and S3-compatible
servers, local folders; GCS and Azure untested).

    <url>/objects/ab/ab12…             image bytes by sha256 (immutable, verified on read)
    <url>/thumbs/ab/ab12….jpg          the thumbnail of object ab12… (pages need one per image, and
                                       fetching it is far cheaper than decoding the image again)
    <url>/index/9f/9f3e….json          fingerprint -> image and provenance (store.IndexEntry)
    <url>/manifests/3c/3c4d….json      scene manifests (scene.json) by sha256: a scene a version
                                       did not change is the previous version's, sent once
    <url>/versions/v0003/scenes.json   {path in the version: sha256} of its scene manifests
    <url>/versions/v0003/manifest.json the version's manifest.json, as in out/ (written last:
                                       a version whose manifest.json exists is complete)
    <url>/journal/<job>.json           predictions submitted and not yet collected
    <url>/lock.json                    the run lock (run/lock.py)

Credentials come from the environment only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION, web identity and instance roles, as obstore reads them).
Everything read back is hostile input: an object whose bytes do not hash to its name, a
manifest naming a path that leaves its folder, a record that does not parse, is an error
(BackendError), never used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError, PreconditionError

from storyboard.errors import UserError
from storyboard.project.model import BackendConfig
from storyboard.state.store import IndexEntry, index_key, object_key, sha256_of
from storyboard.state.versions import VERSION_PATTERN, version_name

OBJECTS, THUMBS, INDEX, MANIFESTS, VERSIONS = "objects", "thumbs", "index", "manifests", "versions"
JOURNAL, LOCK, TOP, SCENES = "journal", "lock.json", "manifest.json", "scenes.json"
MAX_RECORD_BYTES = 1024 * 1024  # an index entry, a scene manifest, a journal record, the lock
MAX_MANIFEST_BYTES = 64 * MAX_RECORD_BYTES  # a version's manifest.json or scenes.json
MAX_OBJECT_BYTES = 200 * 1024 * 1024
MAX_THUMBNAIL_BYTES = 4 * 1024 * 1024
JPEG_START = b"\xff\xd8\xff"
_SHA256 = re.compile("[0-9a-f]{64}")
_SAFE_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
_JOB = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


_from_url: Any = obstore.store.from_url  # its overloads type each store's options apart


class BackendError(UserError):
    """The backend could not be reached, refused a request, or returned something not to trust."""


class LockTaken(Exception):
    """The lock object exists (create-if-absent failed) or changed (a conditional write failed)."""


def open_backend(config: BackendConfig) -> Backend:
    return Backend(config)


class Backend:
    """One backend URL, with storyboard's layout on it."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.url = config.url.rstrip("/")
        retry = {"max_retries": 10, "retry_timeout": timedelta(seconds=config.retry_timeout),
                 "backoff": {"init_backoff": timedelta(milliseconds=50), "max_backoff": timedelta(seconds=5),
                             "base": 2.0}}
        try:
            if self.url.startswith("file://"):
                Path(self.url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
                self.store: Any = obstore.store.from_url(self.url, mkdir=True)
            else:
                options: dict[str, Any] = {}
                if config.endpoint:
                    options["endpoint"] = config.endpoint
                if config.region:
                    options["region"] = config.region
                client = {"allow_http": True} if (config.endpoint or "").startswith("http://") else {}
                self.store = _from_url(self.url, client_options=client, retry_config=retry, **options)
        except (BaseError, OSError, ValueError) as error:
            raise BackendError(f"cannot open the backend {self.url}: {_reason(error)}",
                               hint="check backend.url, backend.endpoint and the credentials in the "
                                    "environment") from None
        self._objects: set[str] | None = None

    # --- objects ----------------------------------------------------------------------------

    def object_names(self, *, refresh: bool = False) -> set[str]:
        """The sha256 of every object the backend holds (one listing, kept for this process)."""
        if self._objects is None or refresh:
            self._objects = self._names(OBJECTS)
        return self._objects

    def fetch_object(self, sha256: str) -> bytes:
        """An object's bytes, checked against its name."""
        path = f"{OBJECTS}/{object_key(sha256)}"
        return self._fetch_verified("object", path, sha256, MAX_OBJECT_BYTES)

    def send_object(self, sha256: str, data: bytes) -> None:
        self._put(f"{OBJECTS}/{object_key(sha256)}", data)
        if self._objects is not None:
            self._objects.add(sha256)

    def fetch_thumbnail(self, sha256: str) -> bytes | None:
        """The thumbnail of object `sha256`, or None when there is none or it is not a JPEG (a
        thumbnail cannot be checked by hash: it is named by its image; pages only show it)."""
        data = self._get_or_none(f"{THUMBS}/{object_key(sha256)}.jpg", MAX_THUMBNAIL_BYTES)
        return data if data is not None and data.startswith(JPEG_START) else None

    def send_thumbnail(self, sha256: str, data: bytes) -> None:
        self._put(f"{THUMBS}/{object_key(sha256)}.jpg", data)

    def object_size(self, sha256: str) -> int:
        try:
            return int(obstore.head(self.store, f"{OBJECTS}/{object_key(sha256)}")["size"])
        except (NotFoundError, FileNotFoundError):
            return 0
        except BaseError as error:
            raise self._failed("read an object's size", error) from None

    def delete_object(self, sha256: str) -> None:
        """An object and its thumbnail."""
        self._delete(f"{OBJECTS}/{object_key(sha256)}")
        self._delete(f"{THUMBS}/{object_key(sha256)}.jpg")
        if self._objects is not None:
            self._objects.discard(sha256)

    # --- the index ----------------------------------------------------------------------------

    def lookup(self, fingerprint: str) -> IndexEntry | None:
        raw = self._get_or_none(f"{INDEX}/{index_key(fingerprint)}", MAX_RECORD_BYTES)
        if raw is None:
            return None
        entry = IndexEntry.from_json(_json_or_none(raw))
        return entry if entry is not None and entry.fingerprint == fingerprint else None

    def record(self, entry: IndexEntry) -> None:
        self._put(f"{INDEX}/{index_key(entry.fingerprint)}",
                              json.dumps(entry.to_json(), sort_keys=True).encode())

    def index_names(self) -> set[str]:
        """The fingerprints the index has entries for (one listing)."""
        return self._names(INDEX)

    def index_entry(self, fingerprint: str) -> IndexEntry | None:
        """The entry for `fingerprint`, or None when there is none or it does not read as one."""
        raw = self._get_or_none(f"{INDEX}/{index_key(fingerprint)}", MAX_RECORD_BYTES)
        if raw is None:
            return None
        entry = IndexEntry.from_json(_json_or_none(raw))
        return entry if entry is not None and entry.fingerprint == fingerprint else None

    def forget(self, fingerprint: str) -> None:
        self._delete(f"{INDEX}/{index_key(fingerprint)}")

    # --- published versions ------------------------------------------------------------------

    def version_numbers(self) -> list[int]:
        numbers = set()
        for path in self._list(f"{VERSIONS}/"):
            match = VERSION_PATTERN.match(path.split("/")[1]) if path.count("/") >= 2 else None
            if match:
                numbers.add(int(match.group(1)))
        return sorted(numbers)

    def version_manifest(self, number: int) -> bytes:
        """A published version's manifest.json."""
        return self._get(f"{VERSIONS}/{version_name(number)}/{TOP}", MAX_MANIFEST_BYTES)

    def version_scenes(self, number: int) -> dict[str, str]:
        """A published version's scene manifests: {path in the version: sha256}, checked."""
        raw = self._get(f"{VERSIONS}/{version_name(number)}/{SCENES}", MAX_MANIFEST_BYTES)
        listing = _json_or_none(raw)
        scenes = listing.get("scenes") if isinstance(listing, dict) else None
        if not isinstance(scenes, dict) or not all(
                isinstance(sha, str) and _SHA256.fullmatch(sha) for sha in scenes.values()):
            raise BackendError(f"{VERSIONS}/{version_name(number)}/{SCENES} in the backend {self.url} "
                               "does not read as storyboard's list of scene manifests: not used")
        return {safe_relative(str(relative)): sha for relative, sha in scenes.items()}

    def manifest_names(self) -> set[str]:
        """The sha256 of every scene manifest the backend holds (one listing)."""
        return self._names(MANIFESTS)

    def fetch_manifest(self, sha256: str) -> bytes:
        """A scene manifest's bytes, checked against its name."""
        path = f"{MANIFESTS}/{object_key(sha256)}.json"
        return self._fetch_verified("scene manifest", path, sha256, MAX_RECORD_BYTES)

    def send_manifest(self, sha256: str, data: bytes) -> None:
        self._put(f"{MANIFESTS}/{object_key(sha256)}.json", data)

    def delete_manifest(self, sha256: str) -> None:
        self._delete(f"{MANIFESTS}/{object_key(sha256)}.json")

    def publish_version(self, number: int, manifest: bytes, scenes: Mapping[str, str]) -> None:
        """A version whose scene manifests the backend holds: their list, then manifest.json (last,
        so a version whose manifest.json exists is complete)."""
        folder = f"{VERSIONS}/{version_name(number)}"
        listing = {"format": 1, "scenes": dict(sorted(scenes.items()))}
        self._put(f"{folder}/{SCENES}", json.dumps(listing, indent=1).encode())
        self._put(f"{folder}/{TOP}", manifest)

    def remove_version(self, number: int) -> None:
        for path in self._list(f"{VERSIONS}/{version_name(number)}/"):
            self._delete(path)

    # --- the journal of submitted predictions ------------------------------------------------

    def journal_records(self) -> list[dict[str, Any]]:
        """Submitted-job records other runs (other machines) left; damaged ones are skipped."""
        records = []
        for path in self._list(f"{JOURNAL}/"):
            record = _json_or_none(self._get_or_none(path, MAX_RECORD_BYTES) or b"")
            if _is_job_record(record):
                records.append(record)
        return records

    def journal_submitted(self, record: Mapping[str, Any]) -> None:
        data = json.dumps(record, sort_keys=True).encode()
        self._put(f"{JOURNAL}/{_job_name(str(record['job']))}.json", data)

    def journal_done(self, job: str) -> None:
        self._delete(f"{JOURNAL}/{_job_name(job)}.json")

    # --- the lock ------------------------------------------------------------------------------

    def read_lock(self) -> tuple[dict[str, Any], str] | None:
        """The lock's content and etag, or None when nobody holds it."""
        try:
            result = obstore.get(self.store, LOCK)
            data = bytes(result.bytes())
            etag = str(result.meta.get("e_tag") or "")
        except (NotFoundError, FileNotFoundError):
            return None
        except BaseError as error:
            raise self._failed("read the run lock", error) from None
        content = _json_or_none(data)
        if not isinstance(content, dict) or not isinstance(content.get("id"), str):
            raise BackendError(f"the run lock {self.url}/{LOCK} does not read as a storyboard lock",
                               hint="if no apply is running, delete it (`storyboard force-unlock` needs "
                                    "the ID a readable lock holds)")
        return content, etag

    def create_lock(self, content: Mapping[str, Any]) -> str:
        """Write the lock only if there is none; its etag. LockTaken if there is one."""
        try:
            result = obstore.put(self.store, LOCK, json.dumps(content).encode(), mode="create")
        except (AlreadyExistsError, PreconditionError):
            raise LockTaken from None
        except BaseError as error:
            raise self._failed("take the run lock", error) from None
        return str(result.get("e_tag") or "")

    def replace_lock(self, content: Mapping[str, Any], etag: str) -> str:
        """Rewrite the lock only if it is still the one with `etag` (renewal, takeover)."""
        data = json.dumps(content).encode()
        try:
            result = obstore.put(self.store, LOCK, data, mode={"e_tag": etag})
        except PreconditionError:
            raise LockTaken from None
        except NotImplementedError:  # a local folder has no conditional update: check, then write
            current = self.read_lock()
            if current is None or current[1] != etag:
                raise LockTaken from None
            result = obstore.put(self.store, LOCK, data)
        except BaseError as error:
            raise self._failed("renew the run lock", error) from None
        return str(result.get("e_tag") or "")

    def delete_lock(self) -> None:
        self._delete(LOCK)

    # --- a write test -----------------------------------------------------------------------------

    def check_writable(self, probe: str) -> None:
        """Write and remove a small object: the credentials reach the backend and may write."""
        path = f"probe/{_job_name(probe)}"
        self._put(path, b"storyboard preflight")
        self._delete(path)

    # --- obstore, with errors said plainly --------------------------------------------------------
    #
    # Only obstore's blocking API is used (run/sync.py runs transfers on a pool of threads).
    # Its asyncio API completes each future from a runtime thread; one that does so while
    # Python finalizes is torn down mid-call, which aborts the process (SIGABRT, exit 134)
    # after all its work is done: seen on Python 3.11 in about half the runs of a 3,000-GET
    # loop. A CI job must not fail after it succeeded. Threads are as fast here (bench/).

    def _names(self, prefix: str) -> set[str]:
        """The sha256 names under `prefix` (content-addressed files: `ab/ab12….json` or `ab/ab12…`)."""
        names = (path.rsplit("/", 1)[-1].removesuffix(".json") for path in self._list(f"{prefix}/"))
        return {name for name in names if _SHA256.fullmatch(name)}

    def _fetch_verified(self, what: str, path: str, sha256: str, limit: int) -> bytes:
        data = self._get(path, limit)
        if sha256_of(data) != sha256:
            raise BackendError(f"{what} {sha256[:12]}… in the backend {self.url} is "
                               "damaged: its bytes do not hash to its name, so it is not used",
                               hint="`storyboard gc --remote --force` removes what no version uses; "
                                    "`storyboard push` sends a good copy from a machine that has one")
        return data

    def _list(self, prefix: str) -> list[str]:
        try:
            return [str(item["path"]) for batch in obstore.list(self.store, prefix) for item in batch]
        except BaseError as error:
            raise self._failed(f"list {prefix}", error) from None

    def _get(self, path: str, limit: int) -> bytes:
        data = self._get_or_none(path, limit)
        if data is None:
            raise BackendError(f"{self.url}/{path} does not exist")
        return data

    def _get_or_none(self, path: str, limit: int) -> bytes | None:
        try:
            result = obstore.get(self.store, path)
            if int(result.meta.get("size") or 0) > limit:
                raise BackendError(f"{self.url}/{path} is larger than storyboard ever writes: not read")
            return bytes(result.bytes())
        except (NotFoundError, FileNotFoundError):
            return None
        except BaseError as error:
            raise self._failed(f"read {path}", error) from None

    def _put(self, path: str, data: bytes) -> None:
        try:
            obstore.put(self.store, path, data)
        except BaseError as error:
            raise self._failed(f"write {path}", error) from None

    def _delete(self, path: str) -> None:
        try:
            obstore.delete(self.store, path)
        except (NotFoundError, FileNotFoundError):
            return
        except BaseError as error:
            raise self._failed(f"delete {path}", error) from None

    def _failed(self, what: str, error: BaseException) -> BackendError:
        return BackendError(f"the backend {self.url} could not {what}: {_reason(error)}",
                            hint="check that it is reachable and that the credentials in the environment "
                                 "may read and write it")


def safe_relative(relative: str) -> str:
    """A path inside a version folder as the backend may name it; anything else is refused."""
    if not _SAFE_PATH.fullmatch(relative) or ".." in relative.split("/"):
        raise BackendError(f"the backend names the path `{relative[:120]}`, which would leave the output "
                           "folder: it is not followed")
    return relative


def _job_name(job: str) -> str:
    if not _JOB.fullmatch(job):
        raise BackendError(f"job id `{job[:80]}` cannot name a file")
    return job


def _is_job_record(record: Any) -> bool:
    if not (isinstance(record, dict) and record.get("event") == "submitted"
            and isinstance(record.get("job"), str) and _JOB.fullmatch(record["job"]) is not None):
        return False
    frames, fingerprints = record.get("frames"), record.get("fingerprints")
    return (isinstance(frames, list) and isinstance(fingerprints, list) and len(frames) == len(fingerprints)
            and all(isinstance(fp, str) and _SHA256.fullmatch(fp) for fp in fingerprints)
            and all(isinstance(address, str) for address in frames)
            and isinstance(record.get("request"), dict))


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _reason(error: BaseException) -> str:
    """The first line of an obstore error (its debug dump follows, and says nothing more)."""
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
