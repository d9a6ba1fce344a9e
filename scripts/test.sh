#!/usr/bin/env bash
# What `make test` runs: lint and types, then the whole pytest suite on SQLite
# (with real Airflow 3 and 2 and the browser tests) and the database tests again
# on PostgreSQL. Services are started here, on 127.0.0.1, and always stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
here=$(pwd)
dags=$here/.test-logs/dags
logs=$here/.test-logs
mkdir -p "$logs"
# One DAG folder for the test Airflows: the contract tests' DAGs and the demo's (tests/demo).
rm -rf "$dags"; mkdir -p "$dags"
cp tests/contract/dags/*.py demo/dags/*.py "$dags/"

cleanup() {
  scripts/airflow.sh stop 3 || true
  scripts/airflow.sh stop 2 || true
  scripts/postgres.sh stop || true
}
trap cleanup EXIT

scripts/browser.sh install
# The DAGs' callbacks post their events to the test suite's live server (tests/contract/test_events_*):
# one port known before Airflow starts, one connection per Airflow naming its environment.
events_port=${DAC_EVENTS_PORT:-28098}
export DAC_EVENTS_SECRET=${DAC_EVENTS_SECRET:-tests-events-secret-0123456789}
events_connection() {
  printf '{"conn_type": "http", "host": "http://127.0.0.1:%s/airflow/events/", "password": "%s", "extra": {"environment": "%s"}}' \
    "$events_port" "$DAC_EVENTS_SECRET" "$1"
}
# The task DAGs (tests/contract/dags/contract_tasks.py) run Django tasks in this checkout's python
# with the test settings: Airflow's workers inherit where that site is.
export AIRFLOW_CLIENT_TASKS_PYTHON=$(cd "$venv" && pwd)/bin/python AIRFLOW_CLIENT_TASKS_SETTINGS=tests.settings
export AIRFLOW_CLIENT_TASKS_CWD=$here
# Airflow takes ~20 s to become healthy: start both now, lint meanwhile.
AIRFLOW_CONN_DJANGO_AIRFLOW_CLIENT=$(events_connection airflow3) \
  scripts/airflow.sh start 3 "$dags" >"$logs/airflow3.out" 2>&1 & a3=$!
AIRFLOW_CONN_DJANGO_AIRFLOW_CLIENT=$(events_connection airflow2) \
  scripts/airflow.sh start 2 "$dags" >"$logs/airflow2.out" 2>&1 & a2=$!
scripts/postgres.sh start

echo "== ruff"; "$venv/bin/ruff" check airflow_client tests scripts demo manage.py benchmarks; "$venv/bin/ruff" format --check airflow_client tests scripts demo manage.py benchmarks
echo "== djade"; git ls-files -z '*.html' | xargs -0 "$venv/bin/djade" --check --target-version 5.2
echo "== mypy"; "$venv/bin/mypy"
echo "== migrations"; "$venv/bin/python" -m django makemigrations --check --dry-run --settings=tests.settings
echo "== wheel"; "$venv/bin/python" scripts/check_wheel.py

wait $a3 || { cat "$logs/airflow3.out"; exit 1; }
wait $a2 || { cat "$logs/airflow2.out"; exit 1; }
export DAC_AIRFLOW3_URL=$(scripts/airflow.sh url 3) DAC_AIRFLOW2_URL=$(scripts/airflow.sh url 2)
export DAC_REQUIRE_SERVICES=1 DAC_CHROMIUM=$(command -v chromium)

echo "== pytest (SQLite, real Airflow 3 and 2, browser)"
"$venv/bin/pytest" -m "not postgres" --liveserver "127.0.0.1:$events_port" --cov --cov-fail-under=90 --cov-report=term --cov-report=xml:"$logs/coverage.xml" -q "$@" || status=$?
echo "== pytest (PostgreSQL: the tests of what is stored and queried)"
# Not again on PostgreSQL: the transports and settings (tests/unit, no database), the
# HTTP fault matrix (tests/faults: the same client code whatever the database) and
# the real Airflows (tests/contract).
DAC_POSTGRES_PORT=${DAC_POSTGRES_PORT:-25432} "$venv/bin/pytest" -m "not browser" \
  --ignore=tests/contract --ignore=tests/unit --ignore=tests/faults -q "$@" || status=$?
exit ${status:-0}
