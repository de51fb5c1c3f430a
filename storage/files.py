"""Where a sweep's files live: a storage URI resolved to a `pyarrow.fs` filesystem.

Accepted URIs: a local path (or ``file://``), ``s3://bucket/prefix`` and
``gs://bucket/prefix``. Object-store options travel as query parameters, e.g.
``s3://bucket/prefix?endpoint_override=127.0.0.1:8333&scheme=http&region=us-east-1``.
Credentials never come from a URI or a spec: S3 uses the standard AWS chain
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, config files,
instance metadata), GCS the Google default credentials. No message or log line names them.

API:
    ``resolve_storage(uri) -> Storage``; ``Storage.path(*parts)``, ``Storage.uri_of(path)``,
    ``Storage.publish(path, data, create_only=False) -> bool``, ``Storage.read_bytes(path)``,
    ``Storage.list_files(directory)``, ``Storage.delete(path)``, ``Storage.display(path)``;
    ``join(uri, *parts)`` (the one join of paths and URIs, query options kept last);
    ``publish_dir(local, uri)`` / ``fetch_dir(uri, local)`` for whole directories
    (checkpoints, encoders, predictions); ``write_file(path, data)`` for node-local files
    (caches); ``is_remote(uri)``.

Publishing is atomic: locally a temporary file (``.<name>.<hex>.tmp``, hidden from every
reader) is fsynced and then renamed over the target; on an object store the object is one
upload that becomes visible whole. ``create_only=True`` never replaces an existing file:
locally through ``os.link`` (fails if the target exists), on S3 through a PUT carrying
``If-None-Match: *``. pyarrow's S3 filesystem cannot send conditional headers, so that one
request is signed here (AWS SigV4, standard library only) with the credentials from the
environment variables; without them, and on GCS, create-only falls back to check-then-write,
which a racing writer can slip through (the lease then resolves the race by reading back).
Every storage failure becomes a one-line `UserError` saying what was wrong and where.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, quote, urlsplit

import pyarrow.fs as pafs

from storage.errors import UserError

SAFE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_OBJECT_OPTIONS = frozenset({"endpoint_override", "scheme", "region"})
_SECRET_OPTIONS = frozenset({"access_key", "secret_key", "session_token", "credentials"})
_UNREACHABLE = (
    "NETWORK_CONNECTION",
    "curlCode",
    "Couldn't connect",
    "Connection refused",
    "Could not resolve",
    "timed out",
    "Timeout",
    "unreachable",
    "Name or service not known",
)
_DENIED = ("ACCESS_DENIED", "AccessDenied", "HTTP status 403", "Forbidden", "Permission denied")
_NO_BUCKET = ("NoSuchBucket", "NO_SUCH_BUCKET", "bucket does not exist", "Bucket does not exist")


def check_name(kind: str, value: str) -> str:
    """Return `value` if it is safe as one path component, else raise `UserError`."""
    if not SAFE_NAME_RE.fullmatch(value) or ".." in value:
        raise UserError(
            f"{kind} {value!r} cannot be used in a storage path (use A-Z a-z 0-9 . _ -)"
        )
    return value


class Fence(Protocol):
    """Called before every write: raises `UserError` once this run may no longer write
    (another run took the sweep over). `orchestrator.lease.LeaseFence` is the one in use."""

    def __call__(self) -> None: ...


def is_remote(uri: str) -> bool:
    """Whether `uri` names an object store (``s3://``, ``gs://``) rather than a local path."""
    return "://" in uri and not uri.startswith("file://")


def join(base: str, *parts: str) -> str:
    """A child of a directory given as a path or a URI, query options kept last:
    ``s3://b/p?endpoint_override=h`` + ``x`` is ``s3://b/p/x?endpoint_override=h``."""
    path, sep, query = base.partition("?")
    head = [path.rstrip("/")] if path else []
    return "/".join([*head, *parts]) + sep + query


def is_temporary(name: str) -> bool:
    """Names that readers skip: in-flight temporaries and hidden files."""
    return name.startswith((".", "_")) or name.endswith(".tmp")


@dataclass(frozen=True)
class Storage:
    """A resolved storage root. `root` is a path inside `fs`; `uri` is safe to print."""

    fs: pafs.FileSystem
    root: str
    uri: str
    s3: S3Target | None = None
    query: str = ""  # object-store options of the URI it was resolved from (no secrets)
    fence: Fence | None = None  # checked before every write and delete

    def fenced(self, fence: Fence | None) -> Storage:
        """The same storage, with every write and delete checked by `fence` first."""
        return replace(self, fence=fence)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    @property
    def create_is_atomic(self) -> bool:
        """Whether ``publish(create_only=True)`` is one atomic step (no check-then-write)."""
        return self.is_local or (self.s3 is not None and _env_credentials() is not None)

    def path(self, *parts: str) -> str:
        return join(self.root, *parts)

    def uri_of(self, path: str) -> str:
        """`path` inside this filesystem as a URI `resolve_storage` takes back (options kept)."""
        if self.is_local:
            return path
        scheme = self.uri.split("://", 1)[0]
        return f"{scheme}://{path}" + (f"?{self.query}" if self.query else "")

    def display(self, path: str) -> str:
        """The user-facing form of `path` (``s3://bucket/key`` or a local path)."""
        if self.is_local:
            return path
        scheme = self.uri.split("://", 1)[0]
        return f"{scheme}://{path}"

    def publish(self, path: str, data: bytes, *, create_only: bool = False) -> bool:
        """Atomically make `data` the content of `path`.

        Returns False only when `create_only` is set and `path` already existed (it is
        then left untouched); True when this call wrote it.
        """
        with _storage_errors(self, "write", path):
            if self.is_local:  # fenced after the data is down, right before the rename
                return _publish_local(path, data, create_only=create_only, fence=self.fence)
            if self.fence is not None:
                self.fence()
            if create_only and self.s3 is not None and self.create_is_atomic:
                return _put_if_absent(self.s3, _object_key(path), data)
            if create_only and self.exists(path):
                return False
            with self.fs.open_output_stream(path) as out:
                out.write(data)
            return True

    def read_bytes(self, path: str) -> bytes | None:
        """The content of `path`, or None when it does not exist."""
        with _storage_errors(self, "read", path):
            try:
                with self.fs.open_input_stream(path) as src:
                    return bytes(src.read())
            except FileNotFoundError:
                return None

    def exists(self, path: str) -> bool:
        with _storage_errors(self, "read", path):
            return bool(self.fs.get_file_info(path).type == pafs.FileType.File)

    def list_files(self, directory: str) -> list[str]:
        """Sorted base names of the files directly in `directory`, temporaries excluded."""
        with _storage_errors(self, "list", directory):
            infos = self.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        names = (info.base_name for info in infos if info.type == pafs.FileType.File)
        return sorted(name for name in names if not is_temporary(name))

    def delete(self, path: str) -> None:
        """Delete `path`; a path that is already gone is fine."""
        if self.fence is not None:
            self.fence()
        with _storage_errors(self, "delete", path):
            try:
                self.fs.delete_file(path)
            except FileNotFoundError:
                return

    def check_reachable(self) -> None:
        """Raise `UserError` if the storage root cannot be listed."""
        self.list_files(self.root)


def resolve_storage(uri: str, fence: Fence | None = None) -> Storage:
    """Resolve a storage URI; raise `UserError` for an unsupported or unsafe one. With a
    `fence`, every write and delete through the result is checked by it first."""
    return _resolve(uri).fenced(fence)


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]*@")


def redact(text: str) -> str:
    """`text` with the user-info of every URI in it (``scheme://user:secret@``) hidden."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def check_uri(uri: str) -> None:
    """Raise `UserError` for a storage URI that cannot be used (no I/O): empty, another
    scheme, credentials in it (never echoed), no bucket, unknown options."""
    text = uri.strip()
    if not text:
        raise UserError("storage is empty: give a path, s3://bucket/prefix or gs://bucket/prefix")
    if "://" not in text or text.startswith("file://"):
        return
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise UserError("storage URI must not carry credentials; set them in the environment")
    if parts.scheme not in ("s3", "gs"):
        raise UserError(
            f"storage scheme {parts.scheme!r}:// is not supported (use a path, s3://, gs://)"
        )
    if not parts.netloc:
        raise UserError(f"storage URI {parts.scheme}://{parts.path} names no bucket")
    _query_options(parts.query, parts.scheme)


def _resolve(uri: str) -> Storage:
    check_uri(uri)
    text = uri.strip()
    if "://" not in text or text.startswith("file://"):
        local = Path(text.removeprefix("file://")).expanduser().resolve()
        return Storage(pafs.LocalFileSystem(), local.as_posix(), local.as_posix())
    parts = urlsplit(text)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    options = _query_options(parts.query, parts.scheme)
    root = f"{bucket}/{prefix}" if prefix else bucket
    shown = f"{parts.scheme}://{root}"
    if parts.scheme == "gs":
        return Storage(_gcs(options, shown), root, shown, query=parts.query)
    target = _s3_target(bucket, options)
    fs = pafs.S3FileSystem(
        region=target.region,
        endpoint_override=options.get("endpoint_override"),
        scheme=options.get("scheme", "https"),
        connect_timeout=5,
        request_timeout=30,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    )
    return Storage(fs, root, shown, target, query=parts.query)


def _query_options(query: str, scheme: str) -> dict[str, str]:
    options = dict(parse_qsl(query, keep_blank_values=True))
    secrets = _SECRET_OPTIONS & options.keys()
    if secrets:
        raise UserError(
            f"storage URI must not carry credentials ({', '.join(sorted(secrets))}); "
            "set them in the environment"
        )
    unknown = options.keys() - _OBJECT_OPTIONS
    if unknown:
        raise UserError(
            f"unknown {scheme}:// storage option(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_OBJECT_OPTIONS))}"
        )
    if options.get("scheme", "https") not in ("http", "https"):
        raise UserError(f"storage option scheme={options['scheme']!r} must be http or https")
    return options


def _gcs(options: dict[str, str], shown: str) -> pafs.FileSystem:
    if "region" in options:
        raise UserError(f"storage option region does not apply to {shown}")
    return pafs.GcsFileSystem(
        endpoint_override=options.get("endpoint_override"),
        scheme=options.get("scheme", "https"),
        retry_time_limit=timedelta(seconds=30),
    )


def _object_key(path: str) -> str:
    return path.split("/", 1)[1] if "/" in path else ""


def write_file(path: str | Path, data: bytes) -> None:
    """Atomically make `data` the content of the local file `path` (caches, prediction
    files): a fsynced temporary renamed into place, as every local publish is."""
    _publish_local(str(path), data, create_only=False, fence=None)


def _publish_local(path: str, data: bytes, *, create_only: bool, fence: Fence | None) -> bool:
    if fence is not None:
        fence()  # before any file appears, even a temporary
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if fence is not None:
            fence()  # again as late as possible: the run may have paused while it wrote
        if create_only:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    _fsync_dir(directory)
    return True


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _storage_errors(storage: Storage, action: str, path: str) -> Iterator[None]:
    try:
        yield
    except UserError:
        raise
    except OSError as exc:
        raise UserError(describe_failure(storage, action, path, exc)) from exc


def describe_failure(storage: Storage, action: str, path: str, exc: BaseException) -> str:
    """One line naming what failed, where, and the likely cause."""
    text = " ".join(str(exc).split())
    where = storage.display(path)
    if isinstance(exc, PermissionError) or any(mark in text for mark in _DENIED):
        verb = "write" if action in ("write", "delete") else "read"
        return f"no {verb} permission on {where} (storage {storage.uri})"
    if any(mark in text for mark in _NO_BUCKET):
        return f"storage {storage.uri}: the bucket does not exist"
    if isinstance(exc, ConnectionError | TimeoutError) or any(m in text for m in _UNREACHABLE):
        return f"storage {storage.uri} is unreachable ({action} {where})"
    if len(text) > 200:
        text = text[:197] + "..."
    return f"cannot {action} {where}: {text}"


# --- create-only PUT on S3 (pyarrow cannot send If-None-Match) -------------------------


@dataclass(frozen=True)
class S3Target:
    """Where a signed S3 request goes: path-style for an endpoint override, else AWS."""

    bucket: str
    region: str
    host: str
    scheme: str
    path_style: bool


def _s3_target(bucket: str, options: dict[str, str]) -> S3Target:
    scheme = options.get("scheme", "https")
    override = options.get("endpoint_override")
    region = options.get("region") or os.environ.get("AWS_REGION")
    region = region or os.environ.get("AWS_DEFAULT_REGION")
    if override:
        return S3Target(bucket, region or "us-east-1", override, scheme, path_style=True)
    if not region:
        try:
            region = pafs.resolve_s3_region(bucket)
        except OSError as exc:
            raise UserError(
                f"storage s3://{bucket}: cannot find the bucket's region "
                f"({' '.join(str(exc).split())[:120]}); add ?region=... or set AWS_REGION"
            ) from exc
    host = f"{bucket}.s3.{region}.amazonaws.com"
    return S3Target(bucket, region, host, scheme, path_style=False)


def _env_credentials() -> tuple[str, str, str | None] | None:
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    return key, secret, os.environ.get("AWS_SESSION_TOKEN") or None


def _put_if_absent(target: S3Target, key: str, data: bytes) -> bool:
    """PUT with ``If-None-Match: *``: True if created, False if the object existed."""
    for attempt in range(4):
        status, body = _signed_put(target, key, data, {"if-none-match": "*"})
        if status in (200, 201, 204):
            return True
        if status == 412:
            return False
        if status == 409 and attempt < 3:  # a racing conditional write is in flight
            time.sleep(0.1 * (attempt + 1))
            continue
        code = re.search(rb"<Code>([^<]{1,64})</Code>", body)
        detail = code.group(1).decode() if code else "no error code"
        raise OSError(f"HTTP status {status} on conditional PUT: {detail}")
    raise OSError("HTTP status 409 on conditional PUT: ConditionalRequestConflict")


def _signed_put(
    target: S3Target, key: str, data: bytes, extra: dict[str, str]
) -> tuple[int, bytes]:
    credentials = _env_credentials()
    if credentials is None:
        raise OSError("no AWS credentials in the environment")
    access, secret, token = credentials
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = quote(f"/{target.bucket}/{key}" if target.path_style else f"/{key}", safe="/-_.~")
    payload_hash = hashlib.sha256(data).hexdigest()
    headers = {"host": target.host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    headers |= extra
    if token:
        headers["x-amz-security-token"] = token
    headers["authorization"] = _authorization(target.region, path, headers, access, secret)
    connection_type = HTTPSConnection if target.scheme == "https" else HTTPConnection
    connection = connection_type(target.host, timeout=30)
    try:
        connection.request("PUT", path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _authorization(
    region: str, path: str, headers: dict[str, str], access: str, secret: str
) -> str:
    """AWS Signature Version 4 of a PUT whose headers are all signed."""
    amz_date, names = headers["x-amz-date"], sorted(headers)
    lines = [f"{name}:{headers[name].strip()}" for name in names]
    signed = ";".join(names)
    canonical = "\n".join(["PUT", path, "", *lines, "", signed, headers["x-amz-content-sha256"]])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    signing_key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


# --- whole directories (checkpoints, encoders, predictions) --------------------------


def publish_dir(local: str, uri: str, fence: Fence | None = None) -> None:
    """Move a finished local directory to `uri`: locally one rename into place (`local`
    must be on the same filesystem; a directory already at `uri` is replaced: renamed
    aside, then removed); on an object store one upload per file, each visible whole."""
    storage = resolve_storage(uri, fence)
    if fence is not None:
        fence()
    with _storage_errors(storage, "write", storage.root):
        if storage.is_local:
            target = Path(storage.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
            if target.is_dir():
                os.replace(target, old)
            os.replace(local, target)
            shutil.rmtree(old, ignore_errors=True)
            return
        for name in sorted(os.listdir(local)):
            with (
                open(os.path.join(local, name), "rb") as src,
                storage.fs.open_output_stream(storage.path(name)) as out,
            ):
                out.write(src.read())


def fetch_dir(uri: str, local: str) -> str:
    """A local directory holding the files under `uri` (the path itself when local)."""
    storage = resolve_storage(uri)
    if storage.is_local:
        return storage.root
    os.makedirs(local, exist_ok=True)
    with _storage_errors(storage, "read", storage.root):
        for info in storage.fs.get_file_info(pafs.FileSelector(storage.root)):
            with (
                storage.fs.open_input_stream(info.path) as src,
                open(os.path.join(local, info.base_name), "wb") as out,
            ):
                out.write(src.read())
    return local
