"""The in-memory server of Streamlit's frontend bundle (dynmask_app/server/static_assets.py), driven with raw
ASGI calls.

No browser and no Streamlit server: each test wraps a tiny inner app that records what reached it.
"""

from __future__ import annotations

import asyncio
import gzip
import os
from email.utils import formatdate
from pathlib import Path

import pytest

from dynmask_app.server import static_assets
from dynmask_app.server.static_assets import StaticAssetsMiddleware, accepts_gzip, streamlit_static_dir
from tests import ROOT

IMMUTABLE = "public, immutable, max-age=31536000"
STATIC = Path(streamlit_static_dir())
BUNDLE = STATIC / "static"


def _real(folder: str, prefix: str, suffix: str) -> str:
    """``/static/<folder>/<name>`` of a file of Streamlit's bundle."""
    names = sorted(p.name for p in (BUNDLE / folder).iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix))
    assert names, f"no {prefix}*{suffix} in {BUNDLE / folder}"
    return f"/static/{folder}/{names[0]}"


MAIN_JS = _real("js", "index.", ".js")
MAIN_CSS = _real("css", "index.", ".css")
FONT = _real("media", "SourceSansVF-Upright", ".woff2")


class Inner:
    """The app behind the middleware (Streamlit's place): records each scope and answers 200 ``inner``."""

    def __init__(self) -> None:
        self.scopes: list[dict] = []

    async def __call__(self, scope, receive, send) -> None:
        self.scopes.append(scope)
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-inner", b"1")]})
        await send({"type": "http.response.body", "body": b"inner"})


def _scope(path: str, method: str = "GET", headers: dict[str, str] | None = None, kind: str = "http") -> dict:
    return {"type": kind, "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}


async def _acall(mw, scope: dict) -> list[dict]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await mw(scope, receive, send)
    return sent


def call(mw, path: str, method: str = "GET", headers: dict[str, str] | None = None, kind: str = "http"):
    """One request: (status, headers as a dict of str, body bytes, the messages sent)."""
    sent = asyncio.run(_acall(mw, _scope(path, method, headers, kind)))
    start = sent[0]
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, b"".join(m.get("body", b"") for m in sent[1:]), sent


def mw_real(**kw) -> tuple[StaticAssetsMiddleware, Inner]:
    inner = Inner()
    return StaticAssetsMiddleware(inner, static_dir=str(STATIC), base_url=kw.pop("base_url", ""), **kw), inner


def on_disk(url_path: str) -> bytes:
    return (STATIC / url_path.lstrip("/")).read_bytes()


# -- what is served --------------------------------------------------------------------------------------------------

def test_gzip_when_accepted_is_the_file_on_disk_in_one_message():
    mw, inner = mw_real()
    status, h, body, sent = call(mw, MAIN_JS, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert status == 200 and not inner.scopes
    assert h["content-encoding"] == "gzip"
    assert h["vary"] == "Accept-Encoding"
    assert int(h["content-length"]) == len(body)
    assert gzip.decompress(body) == on_disk(MAIN_JS)
    assert len(body) < len(on_disk(MAIN_JS)) / 2
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert not sent[1].get("more_body", False)


def test_identity_when_gzip_is_not_accepted():
    mw, inner = mw_real()
    raw = on_disk(MAIN_CSS)
    for headers in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0, br"},
                    {"Accept-Encoding": "*;q=0"}):
        status, h, body, _ = call(mw, MAIN_CSS, headers=headers)
        assert status == 200 and "content-encoding" not in h, headers
        assert body == raw and int(h["content-length"]) == len(raw)
        assert h["vary"] == "Accept-Encoding"
    assert not inner.scopes


def test_accept_encoding_parsing():
    assert accepts_gzip("gzip")
    assert accepts_gzip("deflate, GZIP;q=0.5")
    assert accepts_gzip("x-gzip")
    assert accepts_gzip("*")
    assert not accepts_gzip("")
    assert not accepts_gzip("br, deflate")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip;q=0, *")  # an explicit refusal wins over the wildcard
    assert not accepts_gzip("*;q=0.0")


def test_head_has_the_headers_and_no_body():
    mw, inner = mw_real()
    _, get_h, get_body, _ = call(mw, MAIN_JS, headers={"Accept-Encoding": "gzip"})
    status, h, body, _ = call(mw, MAIN_JS, "HEAD", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and body == b"" and not inner.scopes
    assert h == get_h and int(h["content-length"]) == len(get_body)


def test_already_compressed_files_are_served_as_they_are():
    mw, _ = mw_real()
    status, h, body, _ = call(mw, FONT, headers={"Accept-Encoding": "gzip"})
    assert status == 200 and "content-encoding" not in h and "vary" not in h
    assert body == on_disk(FONT) and h["content-type"] == "font/woff2"


def test_caching_headers_match_streamlits_own_static_handler():
    """Content-Type and Cache-Control as Streamlit's own handler sends them for the same files (its contract for
    hashed assets: public, immutable, one year)."""
    from starlette.testclient import TestClient
    from streamlit.web.server.starlette.starlette_static_routes import create_streamlit_static_handler

    client = TestClient(create_streamlit_static_handler(str(STATIC), None))
    mw, _ = mw_real()
    for path in (MAIN_JS, MAIN_CSS, FONT, _real("media", "snowflake", ".svg"), _real("media", "balloon-0", ".png")):
        theirs = client.get(path, headers={"Accept-Encoding": "identity"})
        assert theirs.status_code == 200, path
        status, h, _, _ = call(mw, path)
        assert status == 200
        assert h["cache-control"] == theirs.headers["cache-control"] == IMMUTABLE, path
        assert h["content-type"] == theirs.headers["content-type"], path


def test_etag_and_last_modified_give_304():
    mw, _ = mw_real()
    _, gz_h, _, _ = call(mw, MAIN_JS, headers={"Accept-Encoding": "gzip"})
    _, id_h, _, _ = call(mw, MAIN_JS)
    assert gz_h["etag"] != id_h["etag"]  # two representations, two validators
    for etag, enc in ((gz_h["etag"], "gzip"), (id_h["etag"], "identity")):
        status, h, body, _ = call(mw, MAIN_JS, headers={"Accept-Encoding": enc, "If-None-Match": etag})
        assert status == 304 and body == b"" and "content-length" not in h
        assert h["etag"] == etag and h["cache-control"] == IMMUTABLE
    status, _, _, _ = call(mw, MAIN_JS, headers={"If-None-Match": '"something-else"'})
    assert status == 200
    mtime = os.stat(STATIC / MAIN_JS.lstrip("/")).st_mtime
    assert call(mw, MAIN_JS, headers={"If-Modified-Since": formatdate(mtime + 60, usegmt=True)})[0] == 304
    assert call(mw, MAIN_JS, headers={"If-Modified-Since": formatdate(mtime - 86400, usegmt=True)})[0] == 200


def test_each_file_is_read_and_compressed_once(monkeypatch):
    mw, _ = mw_real()
    reads: list[str] = []
    real_read = StaticAssetsMiddleware._read

    def counting(self, asset):
        reads.append(asset.path)
        return real_read(self, asset)

    monkeypatch.setattr(StaticAssetsMiddleware, "_read", counting)

    async def many():
        return await asyncio.gather(*(_acall(mw, _scope(MAIN_JS, headers={"Accept-Encoding": "gzip"}))
                                      for _ in range(12)))

    results = asyncio.run(many())
    assert all(r[0]["status"] == 200 for r in results)
    call(mw, MAIN_JS)
    call(mw, MAIN_CSS)
    assert len(reads) == 2


# -- what passes through ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/static/../index.html", "/static/js/../../index.html", "/static/js/../js/" + MAIN_JS.rsplit("/", 1)[1],
    "/static/%2e%2e/index.html", "/static/%2E%2E/%2E%2E/etc/passwd", "/static/..%2findex.html",
    "/static//js/" + MAIN_JS.rsplit("/", 1)[1], "/static/js\\" + MAIN_JS.rsplit("/", 1)[1], MAIN_JS + "/",
    "/static/js/nope.abcdefgh.js", "/static/js/", "/static", "/STATIC" + MAIN_JS[len("/static"):],
    "/", "/index.html", "/favicon.png", "/manifest.json", "/static/index.html", "/Compare",
    "/_stcore/health", "/_stcore/host-config", "/media/abc.png", "/component/x/index.html",
    "/Compare" + MAIN_JS, "/app" + MAIN_JS,
])
def test_anything_else_goes_to_streamlit_untouched(path):
    mw, inner = mw_real()
    status, h, body, _ = call(mw, path, headers={"Accept-Encoding": "gzip"})
    assert (status, h, body) == (200, {"x-inner": "1"}, b"inner")
    assert len(inner.scopes) == 1 and inner.scopes[0]["path"] == path


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_go_to_streamlit(method):
    mw, inner = mw_real()
    assert call(mw, MAIN_JS, method)[2] == b"inner"
    assert inner.scopes[0]["method"] == method


def test_websocket_and_range_requests_go_to_streamlit():
    mw, inner = mw_real()
    asyncio.run(_acall(mw, _scope(MAIN_JS, kind="websocket")))
    assert inner.scopes[-1]["type"] == "websocket"
    assert call(mw, MAIN_JS, headers={"Range": "bytes=0-99"})[2] == b"inner"
    assert len(inner.scopes) == 2


def test_base_url_path_is_honoured():
    mw, inner = mw_real(base_url="/course/")
    status, h, body, _ = call(mw, "/course" + MAIN_JS)
    assert status == 200 and body == on_disk(MAIN_JS)
    assert call(mw, MAIN_JS)[2] == b"inner"  # without the prefix: not ours
    assert call(mw, "/coursework" + MAIN_JS)[2] == b"inner"
    assert len(inner.scopes) == 2


# -- the memory bound ------------------------------------------------------------------------------------------------

def _bundle(tmp_path: Path, sizes: dict[str, int]) -> Path:
    """A fake Streamlit static folder: ``static/js/<name>`` of compressible text of the given sizes."""
    js = tmp_path / "static" / "js"
    js.mkdir(parents=True)
    (tmp_path / "index.html").write_text("<html></html>")
    for name, size in sizes.items():
        (js / name).write_bytes((b"console.log('dynmask');\n" * (size // 24 + 1))[:size])
    return tmp_path


def test_memory_cap_passes_what_does_not_fit_to_streamlit(tmp_path):
    static = _bundle(tmp_path, {"big.AAAAAAAA.js": 60_000, "small.BBBBBBBB.js": 10_000, "more.CCCCCCCC.js": 10_000,
                                "plain.js": 100})
    inner = Inner()
    mw = StaticAssetsMiddleware(inner, static_dir=str(static), base_url="", cap_bytes=15_000)
    assert call(mw, "/static/js/big.AAAAAAAA.js")[2] == b"inner"  # over the cap on its own
    status, h, body, _ = call(mw, "/static/js/small.BBBBBBBB.js", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and gzip.decompress(body) == (static / "static/js/small.BBBBBBBB.js").read_bytes()
    assert 10_000 < mw.bytes_held <= 15_000
    assert call(mw, "/static/js/more.CCCCCCCC.js")[2] == b"inner"  # would pass the cap
    assert call(mw, "/static/js/big.AAAAAAAA.js")[2] == b"inner"  # remembered, never read again
    assert call(mw, "/static/js/plain.js")[2] == b"inner"  # not a hashed name: Streamlit's business
    assert mw.bytes_held <= 15_000
    assert [s["path"] for s in inner.scopes] == ["/static/js/big.AAAAAAAA.js", "/static/js/more.CCCCCCCC.js",
                                                 "/static/js/big.AAAAAAAA.js", "/static/js/plain.js"]


def test_raw_file_that_fits_without_its_gzip_is_served_uncompressed(tmp_path):
    static = _bundle(tmp_path, {"a.AAAAAAAA.js": 10_000})
    mw = StaticAssetsMiddleware(Inner(), static_dir=str(static), base_url="", cap_bytes=10_050)
    status, h, body, _ = call(mw, "/static/js/a.AAAAAAAA.js", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and "content-encoding" not in h and len(body) == 10_000
    assert mw.bytes_held == 10_000


def test_the_default_cap_holds_streamlits_whole_bundle():
    total = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file())
    assert total < static_assets.DEFAULT_CAP_BYTES / 2


# -- the launch ------------------------------------------------------------------------------------------------------

def test_serve_py_is_streamlits_asgi_entry_point():
    """``streamlit run serve.py`` must find ``app = st.App(...)`` (else it would run serve.py as a page)."""
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(ROOT / "serve.py")
    assert found.is_asgi_app and found.import_string == "serve:app"
    source = (ROOT / "serve.py").read_text()
    assert 'st.App("app.py"' in source and "Middleware(StaticAssetsMiddleware)" in source


def test_the_middleware_imports_only_the_standard_library_starlette_and_streamlit():
    """Pure ASGI: never the model core (importing it would load torch into whatever imports the middleware)."""
    import ast

    tree = ast.parse(Path(static_assets.__file__).read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    tops = {m.split(".")[0] for m in modules}
    assert "dynmask_core" not in tops and "dynmask_app" not in tops
    assert tops <= {"__future__", "asyncio", "gzip", "hashlib", "mimetypes", "os", "re", "dataclasses", "email",
                    "typing", "anyio", "starlette", "streamlit"}, tops
