"""Streamlit's own frontend bundle (``/static/js``, ``/static/css``, ``/static/media``) served from memory.

A fresh browser downloads ~8 MB of content-hashed frontend files before it even opens the websocket. Streamlit serves
them uncompressed, in 64 KB chunks read in worker threads, through its whole middleware stack: about half the server
CPU of a fresh session. :class:`StaticAssetsMiddleware` (an ASGI middleware placed in front of Streamlit by
``serve.py``) answers ``GET``/``HEAD`` for those files itself: each file is read once (on its first request) and
gzip-compressed once, then served from memory in a single body message -- compressed when the request's
``Accept-Encoding`` allows gzip (``Vary: Accept-Encoding``), with Streamlit's own caching contract for hashed assets
(``Cache-Control: public, immutable, max-age=<1 year>``), an ``ETag`` and ``Last-Modified`` (``304`` on a match).

Everything else goes to Streamlit untouched: websockets, ``/_stcore/*``, ``/media/*``, ``/component/*``, ``index.html``
and the other top-level files (no-cache, left to Streamlit), ``Range`` requests, other methods, and any path that is not
*exactly* the name of a file found under ``<streamlit>/static/static`` when the index was built (so ``/static/../x``,
encoded variants, double slashes or unknown names never touch the disk here). Past ``cap_bytes`` of held bytes, files
that do not fit are passed through too. ``server.baseUrlPath`` is honoured (the prefix is stripped), as is the ASGI
``root_path``; with ``global.developmentMode`` on (no bundle served by Streamlit) the middleware stands aside.

Pure ASGI: it imports Streamlit only to find its static folder and read its settings, never ``dynmask_core``.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import mimetypes
import os
import re
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

#: Default bound on the bytes held (raw + gzip). Streamlit 1.67's whole bundle is ~25 MB raw, ~8 MB gzipped; one app
#: session fetches ~8 MB raw of it.
DEFAULT_CAP_BYTES = 64 * 1024 * 1024
#: Streamlit's ``STATIC_ASSET_CACHE_MAX_AGE_SECONDS`` (one year), used when that constant cannot be imported.
_FALLBACK_MAX_AGE = 365 * 24 * 60 * 60
#: Content-hashed bundle names: ``<name>.<8-char hash>.<ext>`` (Vite). Anything else is left to Streamlit.
_HASHED = re.compile(r"\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9]+$")
#: Types worth compressing (fonts and images are already compressed).
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/xml")
#: gzip kept only when it saves at least this fraction of the bytes.
_MIN_SAVING = 0.1

Scope = dict[str, Any]


def _max_age() -> int:
    try:
        from streamlit.web.server.starlette.starlette_server_config import STATIC_ASSET_CACHE_MAX_AGE_SECONDS
    except ImportError:  # pragma: no cover - another Streamlit layout
        return _FALLBACK_MAX_AGE
    return int(STATIC_ASSET_CACHE_MAX_AGE_SECONDS)


def streamlit_static_dir() -> str:
    """The folder Streamlit serves its frontend from (``index.html`` and the hashed ``static/`` bundle)."""
    from streamlit import file_util

    return file_util.get_static_dir()


def _content_type(name: str) -> str:
    """The ``Content-Type`` Starlette's ``FileResponse`` would send (Streamlit registers its own JS/CSS types)."""
    media_type = mimetypes.guess_type(name)[0] or "text/plain"
    if media_type.startswith("text/") and "charset=" not in media_type:
        media_type += "; charset=utf-8"
    return media_type


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip``/``x-gzip`` or ``*`` with a non-zero q-value)."""
    explicit: float | None = None
    star: float | None = None
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            explicit = q if explicit is None else max(explicit, q)
        elif coding == "*":
            star = q
    if explicit is not None:
        return explicit > 0
    return star is not None and star > 0


@dataclass
class _Asset:
    path: str
    size: int
    mtime: float
    content_type: str
    compressible: bool
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaded: bool = False
    rejected: bool = False  # over the cap or unreadable: always passed through
    raw: bytes = b""
    gz: bytes | None = None
    etag: str = ""
    gz_etag: str = ""
    last_modified: str = ""


class StaticAssetsMiddleware:
    """ASGI middleware: answers ``GET``/``HEAD`` for Streamlit's hashed frontend files from memory (see module doc).

    ``static_dir``: the folder holding ``index.html`` and ``static/`` (default: Streamlit's own). ``base_url``: the
    ``server.baseUrlPath`` (default: read from Streamlit's config on the first request). ``cap_bytes``: most bytes held
    (raw + gzip). ``compresslevel``: gzip level, paid once per file.
    """

    def __init__(self, app: Any, *, static_dir: str | None = None, base_url: str | None = None,
                 cap_bytes: int = DEFAULT_CAP_BYTES, compresslevel: int = 6) -> None:
        self.app = app
        self._static_dir = static_dir
        self._base_url = base_url
        self.cap_bytes = int(cap_bytes)
        self.compresslevel = int(compresslevel)
        self.bytes_held = 0
        self._reserved = 0
        self._index: dict[str, _Asset] | None = None
        self._prefix = ""
        self._enabled = True
        self._cache_control = f"public, immutable, max-age={_max_age()}"

    # -- setup (first request) ---------------------------------------------------------------------------------------
    def _setup(self) -> dict[str, _Asset]:
        base_url = self._base_url
        dev_mode = False
        if base_url is None or self._static_dir is None:
            from streamlit import config

            if base_url is None:
                base_url = config.get_option("server.baseUrlPath") or ""
            dev_mode = bool(config.get_option("global.developmentMode"))
        base = base_url.strip("/")
        self._prefix = f"/{base}" if base else ""
        self._enabled = not dev_mode
        root = os.path.realpath(os.path.join(self._static_dir or streamlit_static_dir(), "static"))
        index: dict[str, _Asset] = {}
        if self._enabled and os.path.isdir(root):
            for folder, _dirs, files in os.walk(root):
                for name in files:
                    if not _HASHED.search(name):
                        continue
                    full = os.path.join(folder, name)
                    rel = os.path.relpath(full, root).replace(os.sep, "/")
                    if rel.startswith("../") or not os.path.isfile(full):
                        continue
                    st = os.stat(full)
                    ctype = _content_type(name)
                    index[rel] = _Asset(path=full, size=st.st_size, mtime=st.st_mtime, content_type=ctype,
                                        compressible=ctype.startswith(_COMPRESSIBLE))
        self._index = index
        return index

    def _lookup(self, scope: Scope) -> _Asset | None:
        """The asset a request names exactly, or None (then the request goes to Streamlit)."""
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            return None
        index = self._index if self._index is not None else self._setup()
        if not index:
            return None
        path: str = scope.get("path", "")
        root_path: str = scope.get("root_path", "")
        if root_path and (path == root_path or path.startswith(root_path + "/")):
            path = path[len(root_path):]
        if self._prefix:
            if not path.startswith(self._prefix + "/"):
                return None
            path = path[len(self._prefix):]
        if not path.startswith("/static/"):
            return None
        asset = index.get(path[len("/static/"):])
        if asset is None or asset.rejected:
            return None
        for name, _value in scope.get("headers", ()):
            if name == b"range":
                return None
        return asset

    # -- loading (once per file) ---------------------------------------------------------------------------------------
    def _read(self, asset: _Asset) -> tuple[bytes, bytes | None]:
        with open(asset.path, "rb") as f:
            raw = f.read()
        gz = None
        if asset.compressible and raw:
            gz = gzip.compress(raw, compresslevel=self.compresslevel, mtime=0)
            if len(gz) > len(raw) * (1 - _MIN_SAVING):
                gz = None
        return raw, gz

    async def _load(self, asset: _Asset) -> bool:
        """Reads (and compresses) the file once; False when it is not held (over the cap, unreadable)."""
        if asset.loaded:
            return True
        async with asset.lock:
            if asset.loaded or asset.rejected:
                return asset.loaded
            if self._reserved + asset.size > self.cap_bytes:
                asset.rejected = True
                return False
            self._reserved += asset.size
            try:
                import anyio.to_thread

                raw, gz = await anyio.to_thread.run_sync(self._read, asset)
            except OSError:
                self._reserved -= asset.size
                asset.rejected = True
                return False
            self._reserved += len(raw) - asset.size
            if gz is not None and self._reserved + len(gz) > self.cap_bytes:
                gz = None  # the raw file fits, its gzip does not: serve it uncompressed from memory
            if gz is not None:
                self._reserved += len(gz)
            digest = hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:20]
            asset.raw, asset.gz = raw, gz
            asset.etag, asset.gz_etag = f'"{digest}"', f'"{digest}-gz"'
            asset.last_modified = formatdate(asset.mtime, usegmt=True)
            asset.loaded = True
            self.bytes_held = self._reserved
            return True

    # -- serving -------------------------------------------------------------------------------------------------------
    @staticmethod
    def _not_modified(headers: dict[bytes, bytes], asset: _Asset, etag: str) -> bool:
        inm = headers.get(b"if-none-match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.decode("latin-1").split(",")}
            return "*" in tags or etag in tags
        ims = headers.get(b"if-modified-since")
        if ims is not None:
            try:
                return int(asset.mtime) <= parsedate_to_datetime(ims.decode("latin-1")).timestamp()
            except (TypeError, ValueError, OverflowError):
                return False
        return False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        asset = self._lookup(scope)
        if asset is None or not await self._load(asset):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        use_gz = asset.gz is not None and accepts_gzip(headers.get(b"accept-encoding", b"").decode("latin-1"))
        body = asset.gz if use_gz else asset.raw
        etag = asset.gz_etag if use_gz else asset.etag
        out = [(b"cache-control", self._cache_control.encode()), (b"etag", etag.encode()),
               (b"last-modified", asset.last_modified.encode())]
        if asset.gz is not None:
            out.append((b"vary", b"Accept-Encoding"))
        if self._not_modified(headers, asset, etag):
            await send({"type": "http.response.start", "status": 304, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return
        out += [(b"content-type", asset.content_type.encode()), (b"content-length", str(len(body)).encode())]
        if use_gz:
            out.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
