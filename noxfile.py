"""The supported Python x Django matrix (`make matrix`); runs the fast suite in each pair.

Interpreters come from ~/.pyenv/versions (the Makefile puts them on PATH);
environments are built with uv.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True

DJANGO = {"5.2": "Django>=5.2,<6.0", "6.0": "Django>=6.0,<6.1", "6.1": "Django>=6.1,<6.2"}
# Django 6.x needs Python 3.12 or newer.
PAIRS = [("3.10", "5.2"), ("3.11", "5.2"), ("3.12", "6.0"), ("3.12", "6.1"), ("3.13", "6.0"), ("3.13", "6.1")]


@nox.session
@nox.parametrize(("python", "django"), PAIRS)
def tests(session: nox.Session, django: str) -> None:
    session.install("-e", ".", "--group", "test", DJANGO[django])
    session.run("pytest", "-q", "-m", "not contract and not browser and not postgres", *session.posargs)
