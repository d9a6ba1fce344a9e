"""`make bench`: run every benchmarks/bench_*.py, print one table, write docs/benchmarks.md.

    python -m benchmarks.run [--only MODULE ...] [--db sqlite|postgresql|all] [--output PATH]

Each module's ``rows(db)`` runs in a fresh process per database (``--child``),
which sends its rows back as JSON on its standard output; whatever else it
prints goes to standard error. A module that crashes, hangs (DAC_BENCH_TIMEOUT
seconds, default 1800) or answers no rows becomes a FAIL row, not the end of
the run. PostgreSQL: the one already listening on DAC_POSTGRES_PORT (default
25432) is used; otherwise scripts/postgres.sh starts one and stops it at the end.
The exit status is 1 when any row failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import DATABASES, Row, postgres_port

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
REPORT = ROOT / "docs" / "benchmarks.md"
#: What the report says to run (`make bench` runs ``python -m benchmarks.run --db all``).
COMMAND = "make bench"
COLUMNS = ("what", "db", "measured", "baseline", "target", "result")


# --- modules ---------------------------------------------------------------------------------


def discover(folder: Path = BENCHMARKS) -> list[str]:
    """The bench modules' names (``bench_*.py``), in name order."""
    return sorted(path.stem for path in folder.glob("bench_*.py"))


def module_name(text: str) -> str:
    """``sync``, ``bench_sync`` or ``benchmarks/bench_sync.py``: the module ``bench_sync``."""
    stem = Path(text).stem
    return stem if stem.startswith("bench_") else f"bench_{stem}"


def result(row: Row) -> str:
    return "-" if row.passed is None else "PASS" if row.passed else "FAIL"


def failed_row(module: str, db: str, error: str) -> Row:
    """What a module that did not give its rows shows in the table."""
    detail = " ".join(error.split())
    return Row(
        what=f"{module}: did not finish",
        db=db,
        measured=(detail[:297] + "...") if len(detail) > 300 else detail or "no error text",
        baseline="-",
        target="rows from every module",
        passed=False,
    )


def child(module: str, db: str) -> int:
    """In the child process: run ``rows(db)`` of ``module`` (dotted), write ``{"rows": [...]}`` or ``{"error": ...}``."""
    sys.stdout.flush()
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the module's own prints (and its subprocesses') go to stderr
    try:
        import importlib

        rows = importlib.import_module(module).rows(db)
        if not isinstance(rows, list) or not all(isinstance(row, Row) for row in rows):
            raise TypeError(f"rows() returned {type(rows).__name__}, not a list of harness.Row")
        data: dict[str, Any] = {"rows": [dataclasses.asdict(row) for row in rows]}
    except BaseException as exc:  # the parent shows any failure as a FAIL row
        import traceback

        traceback.print_exc()
        data = {"error": f"{type(exc).__name__}: {exc}"}
    with answer:
        json.dump(data, answer)
    return 0 if "rows" in data else 1


def _end_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _pump(stream: Any, prefix: str, tail: deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        tail.append(line)
        print(f"{prefix} {line}", file=sys.stderr, flush=True)


def run_module(
    module: str, db: str, env: dict[str, str], timeout: float, package: str = "benchmarks"
) -> list[Row]:
    """``module``'s rows for ``db`` from a fresh process, or one FAIL row saying why there are none."""
    command = [sys.executable, "-m", "benchmarks.run", "--child", f"{package}.{module}", "--db", db]
    # Its own session: a hung module is ended with everything it started (gunicorn...).
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    tail: deque[str] = deque(maxlen=20)
    with process:
        pump = threading.Thread(target=_pump, args=(process.stderr, f"[{module} {db}]", tail), daemon=True)
        pump.start()
        timer = threading.Timer(timeout, _end_group, (process.pid, signal.SIGKILL))
        timer.start()
        try:
            output = process.stdout.read() if process.stdout else b""
            status = process.wait()
        finally:
            timer.cancel()
            _end_group(process.pid, signal.SIGTERM)  # whatever it left running (a crashed module's server)
        pump.join(timeout=5)
    try:
        data = json.loads(output)
        if data.get("rows"):
            return [Row(**row) for row in data["rows"]]
        error = str(data.get("error") or "rows() returned no rows")
    except (ValueError, TypeError, KeyError):
        last = next((line for line in reversed(tail) if line.strip()), "")
        if status == -signal.SIGKILL:
            error = f"stopped after {timeout:g} s"
        else:
            error = f"exit status {status}: {last}" if last else f"exit status {status}"
    return [failed_row(module, db, error)]


def merge(results: Sequence[tuple[str, Sequence[Row]]]) -> list[Row]:
    """One list: module by module, each ``what`` with its databases side by side.

    A row without a database ("-") that both runs of a module give is shown once.
    """
    merged: list[Row] = []
    seen: set[tuple[str, str]] = set()
    by_module: dict[str, list[Row]] = {}
    for module, rows in results:
        by_module.setdefault(module, []).extend(rows)
    for rows in by_module.values():
        order = list(dict.fromkeys(row.what for row in rows))
        for what in order:
            for row in rows:
                if row.what == what and (row.what, row.db) not in seen:
                    seen.add((row.what, row.db))
                    merged.append(row)
    return merged


# --- output ----------------------------------------------------------------------------------


def cells(row: Row) -> list[str]:
    return [row.what, row.db, row.measured, row.baseline, row.target, result(row)]


def text_table(rows: Sequence[Row]) -> str:
    """The table for a terminal: columns padded to their widest cell."""
    lines = [list(COLUMNS), *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    rule = ["-" * width for width in widths]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [lines[0], rule, *lines[1:]]
    )


def markdown_table(rows: Sequence[Row]) -> str:
    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(value.replace("|", "\\|") for value in values) + " |"

    return "\n".join([line(COLUMNS), line(["---"] * len(COLUMNS)), *(line(cells(row)) for row in rows)])


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def postgres_version(port: int) -> str | None:
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]).split()[0] if row else None
    return None


def machine(postgres: str | None) -> list[tuple[str, str]]:
    import django

    load = " / ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "-"
    return [
        ("CPU", f"{os.cpu_count()} x {_cpu_model()}"),
        ("memory", _memory()),
        ("system", platform.platform()),
        ("load average at start (1/5/15 min)", load),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", postgres or "not measured"),
    ]


def report(
    rows: Sequence[Row], facts: Sequence[tuple[str, str]], when: datetime.datetime, command: str = COMMAND
) -> str:
    """docs/benchmarks.md."""
    failed = sum(row.passed is False for row in rows)
    passed = sum(row.passed is True for row in rows)
    facts_table = "\n".join(["| machine | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in facts)])
    return f"""# Benchmarks

Measured on {when:%Y-%m-%d %H:%M} UTC by `{command}`.
What each row measures is in its module, `benchmarks/bench_*.py`; README, "Benchmarks", says how to run them.

{facts_table}

{markdown_table(rows)}

{passed} rows met their target, {failed} did not; rows marked "-" are figures without a target.
Times depend on the machine and on what else it was doing; request and query counts do not.
To measure again: `{COMMAND}` (or `.venv/bin/python -m benchmarks.run --only MODULE --db sqlite`).
"""


# --- PostgreSQL ------------------------------------------------------------------------------


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def postgresql(port: int) -> Iterator[str | None]:
    """A PostgreSQL on ``port`` for the run; yields None, or why there is none."""
    if listening(port):
        print(f"Using the PostgreSQL already listening on port {port}.", file=sys.stderr)
        yield None
        return
    env = {**os.environ, "DAC_POSTGRES_PORT": str(port)}
    script = str(ROOT / "scripts" / "postgres.sh")
    print(f"Starting PostgreSQL on port {port} (scripts/postgres.sh).", file=sys.stderr)
    try:
        subprocess.run([script, "start"], env=env, check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", None) or b""
        yield f"PostgreSQL did not start: {stderr.decode(errors='replace').strip() or exc}"
        return
    try:
        yield None
    finally:
        subprocess.run([script, "stop"], env=env, check=False, capture_output=True, timeout=120)


# --- main ------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", metavar="MODULE", help="bench module (repeatable)")
    parser.add_argument("--db", choices=[*DATABASES, "all"], default="all")
    parser.add_argument(
        "--output",
        type=Path,
        help="the report (default: docs/benchmarks.md when every module runs on both databases)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv_used = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv_used)
    if args.child:
        return child(args.child, args.db)
    available = discover()
    modules = [module_name(name) for name in args.only] if args.only else available
    unknown = [module for module in modules if module not in available]
    if unknown:
        print(f"No such bench module: {', '.join(unknown)} (have: {', '.join(available)})", file=sys.stderr)
        return 2
    databases = list(DATABASES) if args.db == "all" else [args.db]
    full = not args.only and args.db == "all"
    output = args.output if args.output else (REPORT if full else None)
    port = postgres_port()
    env = {**os.environ, "DAC_POSTGRES_PORT": str(port)}
    timeout = float(os.environ.get("DAC_BENCH_TIMEOUT") or 1800)
    started = datetime.datetime.now(datetime.timezone.utc)
    results: list[tuple[str, list[Row]]] = []
    pg_version = None
    with contextlib.ExitStack() as stack:
        unavailable = stack.enter_context(postgresql(port)) if "postgresql" in databases else None
        if "postgresql" in databases and unavailable is None:
            pg_version = postgres_version(port)
        facts = machine(pg_version)
        for module in modules:
            for db in databases:
                if db == "postgresql" and unavailable:
                    results.append((module, [failed_row(module, db, unavailable)]))
                    continue
                print(f"== {module} ({db})", file=sys.stderr, flush=True)
                results.append((module, run_module(module, db, env, timeout)))
    rows = merge(results)
    print(text_table(rows))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        command = (
            COMMAND
            if not args.only and args.db == "all"
            else " ".join(["python -m benchmarks.run", *argv_used])
        )
        output.write_text(report(rows, facts, started, command))
        print(f"\nWritten to {output}.")
    return 1 if any(row.passed is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
