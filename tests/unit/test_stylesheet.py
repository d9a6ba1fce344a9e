"""The stylesheet works wherever the widget and the pages are placed (issue 9, defect 19).

A site's own ``airflow_client/base.html`` may drop ``.ac-page``, and a widget may sit
outside ``.ac-widget``'s usual frame: every ``--ac-*`` variable used without a fallback
must then still be defined, i.e. at ``:root``.
"""

from __future__ import annotations

import re
from pathlib import Path

import airflow_client

CSS = (Path(airflow_client.__file__).parent / "static" / "airflow_client" / "airflow_client.css").read_text()


def rules() -> list[tuple[list[str], str]]:
    """(selectors, declarations) of every innermost rule (those inside @media too)."""
    text = re.sub(r"/\*.*?\*/", "", CSS, flags=re.DOTALL)
    return [
        ([selector.strip() for selector in selectors.split(",")], body)
        for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text)
    ]


def defined_at_root() -> set[str]:
    names: set[str] = set()
    for selectors, body in rules():
        if ":root" in selectors:
            names |= set(re.findall(r"(--ac-[\w-]+)\s*:", body))
    return names


def used_without_fallback() -> set[str]:
    return set(re.findall(r"var\(\s*(--ac-[\w-]+)\s*\)", CSS))


def test_the_parser_sees_the_stylesheet() -> None:
    assert len(rules()) > 50
    assert {"--ac-link", "--ac-success", "--ac-muted"} <= used_without_fallback()


def test_every_variable_used_without_a_fallback_is_defined_at_root() -> None:
    missing = used_without_fallback() - defined_at_root()
    assert not missing, f"used but only defined inside .ac-page/.ac-widget: {sorted(missing)}"


def test_the_variables_still_follow_the_admin_where_it_sets_its_own() -> None:
    # the admin's dark theme sets --body-fg and friends below :root too: the widget and pages re-read them
    (body,) = [body for selectors, body in rules() if ".ac-widget" in selectors and ".ac-page" in selectors]
    assert "var(--body-fg" in body
