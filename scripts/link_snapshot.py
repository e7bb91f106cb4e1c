"""What a share link shows, as data: open each link on its page (Streamlit's AppTest, the real page scripts and
models) and write every text, number, table and chart spec on the page to one JSON file; ``--compare`` checks a
second snapshot against a first, element by element.

Used to prove that a refactor changed nothing a user sees::

    .venv/bin/python scripts/link_snapshot.py --out /tmp/before.json
    ... change the code ...
    .venv/bin/python scripts/link_snapshot.py --out /tmp/after.json --compare /tmp/before.json

The links (all six pages, the three kinds of input) are in ``LINKS``; ``--links FILE`` reads one query string per
line instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Query strings, each with its ``page=``: every page, every kind of input, static and dynamic strategies.
LINKS = (
    "v=2&page=playground",
    "v=2&page=playground&input=text&ref=The+movie+was+not+good+at+all&s=topk&p.k=3",
    "v=2&page=playground&input=text&ref=The+cat+sat+on+the+mat&s=random_dynamic&seed=7",
    "v=2&page=playground&input=text&model=smollm2&ref=The+capital+of+France+is&s=sliding_window&p.radius=2",
    "v=2&page=playground&input=image&ref=shapes-star&model=shapes_vit&s=causal",
    "v=2&page=playground&input=image&ref=shapes-hard-small-ring&model=shapes_vit&s=topk&p.k=4",
    "v=2&page=playground&input=audio&ref=kw-stop&model=keywords_audio&s=sliding_window&p.radius=3",
    "v=2&page=compare&seed=11",
    "text=The+film+was+wonderful&strategy=causal",
    "v=2&page=compare&input=image&ref=shapes-circle&model=shapes_vit&seed=5",
    "v=2&page=compare&input=audio&ref=kw-go&model=keywords_audio&seed=3",
    "v=2&page=attribution",
    "v=2&page=attribution&input=image&ref=shapes-cross&model=shapes_vit",
    "v=2&page=attribution&input=audio&ref=kw-left&model=keywords_audio",
    "v=2&page=steps",
    "v=2&page=steps&input=text&ref=apple+banana+orange&s=causal&layer=2&head=3",
    "v=2&page=sinks",
    "v=2&page=mlm",
)


def page_file(page: str) -> str:
    from dynmask_app.page_registry import OTHER_PAGE_IDS, PAGES
    return PAGES[page].file if page in PAGES else OTHER_PAGE_IDS[page]


def _element(el) -> object:
    """One element as plain data (its kind and what it shows)."""
    kind = type(el).__name__
    proto = getattr(el, "proto", None)
    if kind in ("Markdown", "Caption", "Title", "Header", "Subheader", "Text", "Latex", "Code", "Error", "Warning",
                "Info", "Success", "Exception"):
        return [kind, str(el.value)]
    if kind == "Metric":
        return [kind, el.label, el.value, el.delta]
    if kind in ("Dataframe", "Table"):
        return [kind, el.value.to_csv()]
    if proto is not None:
        name = proto.DESCRIPTOR.name
        if name in ("PlotlyChart", "ArrowVegaLiteChart", "VegaLiteChart"):
            spec = getattr(proto, "spec", "") or ""
            return [name, spec]
        if name in ("Json",):
            return [name, proto.body]
        if name in ("Html",):
            return [name, proto.body]
        if name in ("Image", "Imgs"):
            return [name, str(proto)[:2000]]
    return None


#: Wall-clock times shown on a page ("0.07 s for both passes"): they differ from run to run, the numbers may not.
_TIMES = re.compile(r"\b\d+(\.\d+)? s\b")


def _steady(data: object) -> object:
    if isinstance(data, str):
        return _TIMES.sub("<time> s", data)
    if isinstance(data, list):
        return [_steady(x) for x in data]
    return data


def _walk(node, out: list) -> None:
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            _walk(child, out)
        return
    data = _element(node)
    if data is not None:
        out.append(_steady(data))


def snapshot(link: str, timeout: float = 600) -> dict:
    from streamlit.testing.v1 import AppTest
    query = dict(parse_qsl(link))
    at = AppTest.from_file(str(ROOT / page_file(query.get("page", "playground"))), default_timeout=timeout)
    at.query_params.update(query)
    start = time.perf_counter()
    at.run()
    main: list = []
    _walk(at.main, main)
    side: list = []
    _walk(at.sidebar, side)
    return {"link": link, "seconds": round(time.perf_counter() - start, 1), "main": main, "sidebar": side,
            "exceptions": [str(e.value) for e in at.exception]}


def compare(before: dict, after: dict) -> list[str]:
    problems = []
    for link, old in before.items():
        new = after.get(link)
        if new is None:
            problems.append(f"{link}: missing")
            continue
        for part in ("main", "sidebar", "exceptions"):
            if old[part] != new[part]:
                n = min(len(old[part]), len(new[part]))
                first = next((i for i in range(n) if old[part][i] != new[part][i]), n)
                a = old[part][first] if first < len(old[part]) else None
                b = new[part][first] if first < len(new[part]) else None
                problems.append(f"{link} [{part} #{first}]:\n  before {str(a)[:300]}\n  after  {str(b)[:300]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--compare", help="an earlier snapshot to compare with")
    parser.add_argument("--links", help="a file with one query string per line")
    args = parser.parse_args()
    links = LINKS if not args.links else [x.strip() for x in Path(args.links).read_text().splitlines() if x.strip()]
    result = {}
    for link in links:
        result[link] = snapshot(link)
        r = result[link]
        print(f"{r['seconds']:6.1f} s  {len(r['main']):3d} elements  {link}", flush=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1))
    if args.compare:
        problems = compare(json.loads(Path(args.compare).read_text()), result)
        for p in problems:
            print(p)
        print(f"{len(links) - len({p.split(' ')[0] for p in problems})} of {len(links)} links identical")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
