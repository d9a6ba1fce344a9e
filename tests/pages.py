"""A page as htmx holds it, for tests without a browser: its widgets' keys and its poller.

``Page.of(html)`` reads what ``{% airflow_status %}`` and ``{% airflow_poller %}``
rendered; ``page.poll_url()`` is the request the poller makes (hx-include: its own
inputs, then every widget's key); ``page.apply(html)`` does what htmx does with the
answer's out-of-band swaps. The benchmarks use it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urlencode

SECTION = re.compile(r"<section\b([^>]*)>(.*?)</section>", re.DOTALL)
POLLER = re.compile(r'<div id="ac-poller"([^>]*)>(.*?)</div>', re.DOTALL)
INPUT = re.compile(r"<input\b([^>]*)>")


def attribute(tag: str, name: str) -> str | None:
    found = re.search(rf'\s{re.escape(name)}="([^"]*)"', tag)
    return unescape(found.group(1)) if found else None


def inputs(html: str) -> list[tuple[str, str]]:
    """The (name, value) of each input in ``html``, in document order."""
    pairs = []
    for found in INPUT.finditer(html):
        name, value = attribute(found.group(1), "name"), attribute(found.group(1), "value")
        if name is not None:
            pairs.append((name, value or ""))
    return pairs


@dataclass
class Widget:
    dom_id: str
    key: str
    poll: str
    html: str


@dataclass
class Page:
    #: dom id -> widget, in page order
    widgets: dict[str, Widget] = field(default_factory=dict)
    poller_url: str = ""
    #: the poller's own inputs (since, mode, next)
    poller: dict[str, str] = field(default_factory=dict)
    interval: str = ""

    @classmethod
    def of(cls, html: str) -> Page:
        page = cls()
        page.apply(html, oob_only=False)
        return page

    def apply(self, html: str, *, oob_only: bool = True) -> list[str]:
        """Swap in the widgets (and the poller) of an answer; the dom ids swapped, in order."""
        swapped = []
        for found in SECTION.finditer(html):
            attrs, body = found.groups()
            dom_id = attribute(attrs, "id")
            oob = attribute(attrs, "hx-swap-oob")
            widget = "ac-widget" in (attribute(attrs, "class") or "")
            if dom_id is None or not (widget or oob == "delete"):
                continue
            if oob_only and oob is None:
                continue
            swapped.append(dom_id)
            if oob == "delete":
                self.widgets.pop(dom_id, None)
                continue
            keys = [value for name, value in inputs(body) if name == "w"]
            self.widgets[dom_id] = Widget(
                dom_id, keys[0] if keys else "", attribute(attrs, "data-poll") or "", body
            )
        poller = POLLER.search(html)
        if poller is not None:
            attrs, body = poller.groups()
            self.poller_url = attribute(attrs, "hx-get") or ""
            self.poller = dict(inputs(body))
            trigger = attribute(attrs, "hx-trigger") or ""
            every = re.search(r"every (\S+?)s\b", trigger)
            self.interval = every.group(1) if every else ""
        return swapped

    def poll_url(self) -> str:
        """The poller's request: its inputs, then each widget's key (as hx-include gathers them)."""
        query = [*self.poller.items(), *(("w", w.key) for w in self.widgets.values() if w.key)]
        return f"{self.poller_url}?{urlencode(query)}"

    def status(self, dom_id: str) -> str:
        """A widget's state, as its badge reads."""
        found = re.search(r'<span class="ac-badge[^"]*">([^<]*)</span>', self.widgets[dom_id].html)
        assert found
        return found.group(1)

    def ids(self, dag_id: str = "") -> list[str]:
        return [dom_id for dom_id in self.widgets if dag_id in dom_id]
