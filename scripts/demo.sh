#!/usr/bin/env bash
# What `make demo` runs: the demo site (demo/) against a real Airflow on this machine.
#
#   AIRFLOW=3     Airflow 3.3.2 (default)        AIRFLOW=2   Airflow 2.11.2
#   AIRFLOW=fake  no Airflow: a simulated one in Django's process whose runs end after a few seconds
#
# Django on http://127.0.0.1:${DEMO_PORT:-8000} (user demo, password demo), Airflow's API and UI on
# 127.0.0.1:28090 (3) or 28092 (2), admin/admin; ports and home apart from the test suite's, so
# `make test` can run meanwhile. Each start begins with a fresh demo database (.demo/) and a fresh
# Airflow home. Ctrl-C stops Django and Airflow and every process they started.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${AIRFLOW:-3}
venv=${VENV:-.venv}
port=${DEMO_PORT:-8000}
state=$(pwd)/.demo
cache=${DAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/django-airflow-client}
started=$(date +%s)

case "$mode" in
  3) af_port=${DEMO_AIRFLOW_PORT:-28090}; log_port=28797; trigger_log_port=28798 ;;
  2) af_port=${DEMO_AIRFLOW_PORT:-28092}; log_port=28799; trigger_log_port=28800 ;;
  fake) ;;
  *) echo "AIRFLOW must be 3, 2 or fake (got '$mode')" >&2; exit 2 ;;
esac

say() { printf '\033[1m==> [%3d s] %s\033[0m\n' "$(($(date +%s) - started))" "$*"; }
elapsed() { echo "$(($(date +%s) - started)) s"; }
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if in_use "$port"; then
  echo "Port $port is in use: stop what listens there or pick another with DEMO_PORT=8001 make demo" >&2
  exit 1
fi

django_pid= airflow_job= airflow_started=
# The shared secret of the events endpoint (demo/settings.py reads it): a new one each start.
export DEMO_EVENTS_SECRET=${DEMO_EVENTS_SECRET:-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')}
if [ "$mode" != fake ]; then
  export DAC_AIRFLOW_PORT=$af_port DAC_AIRFLOW_HOME=$cache/demo-airflow-home-$mode
  export DAC_AIRFLOW_LOG_PORT=$log_port DAC_AIRFLOW_TRIGGER_LOG_PORT=$trigger_log_port
  airflow_url=http://127.0.0.1:$af_port
  if in_use "$af_port"; then
    echo "Port $af_port (Airflow) is in use: is another demo running? DEMO_AIRFLOW_PORT=... picks another" >&2
    exit 1
  fi
fi

cleanup() {
  trap - INT TERM EXIT
  set +e
  say "Stopping"
  if [ -n "$django_pid" ]; then
    # runserver runs in its own process group (setsid): the group goes, children included.
    kill -TERM -- "-$django_pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 -- "-$django_pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$django_pid" 2>/dev/null
    echo "Django stopped."
  fi
  if [ -n "$airflow_job" ]; then
    kill -TERM "$airflow_job" 2>/dev/null  # a start still waiting for health
    wait "$airflow_job" 2>/dev/null
  fi
  if [ -n "$airflow_started" ]; then
    scripts/airflow.sh stop "$mode" && echo "Airflow $mode stopped."
  fi
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

mkdir -p "$state"
if ! [ -f "$venv/.compiled" ]; then
  # With PYTHONDONTWRITEBYTECODE set, each manage.py would compile Django again (seconds per command).
  say "Compiling the Django environment's modules once"
  "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null 2>&1 || true
  touch "$venv/.compiled"
fi
"$venv/bin/python" -m compileall -q airflow_client demo >/dev/null 2>&1 || true
if [ "$mode" != fake ]; then
  say "Airflow $mode (cached under $cache)"
  scripts/airflow.sh install "$mode"
  say "Starting Airflow $mode on $airflow_url (about 20 s; log: $state/airflow-$mode.log)"
  airflow_started=1
  # The demo DAGs push their events to the demo site (airflow_client.callbacks).
  AIRFLOW_CONN_DJANGO_AIRFLOW_CLIENT=$(printf '{"conn_type": "http", "host": "http://127.0.0.1:%s/airflow/events/", "password": "%s"}' "$port" "$DEMO_EVENTS_SECRET") \
    scripts/airflow.sh start "$mode" demo/dags >"$state/airflow-$mode.log" 2>&1 &
  airflow_job=$!
fi

say "Django: a fresh demo database with 20 records ($state/db-$mode.sqlite3)"
export DJANGO_SETTINGS_MODULE=demo.settings DEMO_AIRFLOW=$mode DEMO_DB=$state/db-$mode.sqlite3
[ "$mode" = fake ] || export DEMO_AIRFLOW_URL=$airflow_url
rm -f "$DEMO_DB"
"$venv/bin/python" manage.py migrate -v 0
"$venv/bin/python" manage.py seed_demo

if [ "$mode" != fake ]; then
  say "Waiting for Airflow $mode to be healthy"
  if ! wait "$airflow_job"; then
    airflow_job=
    echo "Airflow $mode did not start; its log ($state/airflow-$mode.log) ends with:" >&2
    tail -30 "$state/airflow-$mode.log" >&2
    exit 1
  fi
  airflow_job=
  say "Waiting for Airflow to parse the demo DAGs (demo/dags)"
  "$venv/bin/python" - <<'PY'
import os, sys, time
import httpx
base, major = os.environ["DEMO_AIRFLOW_URL"], os.environ["DEMO_AIRFLOW"]
deadline = time.monotonic() + 120
with httpx.Client(base_url=base, timeout=10) as client:
    if major == "3":
        token = client.post("/auth/token", json={"username": "admin", "password": "admin"}).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        path = "/api/v2/dags/{}"
    else:
        client.auth = ("admin", "admin")
        path = "/api/v1/dags/{}"
    missing = ["index_finding_aid", "delete_finding_aid", "harvest_collection"]
    while missing:
        missing = [dag for dag in missing if client.get(path.format(dag)).status_code != 200]
        if missing and time.monotonic() > deadline:
            sys.exit(f"Airflow does not list {missing} after 120 s: see its dag-processor log.")
        time.sleep(0.5)
PY
fi

say "Starting Django on http://127.0.0.1:$port (log: $state/django.log)"
# --noreload: one process (the simulated Airflow lives in it), in its own group so Ctrl-C stops all of it.
setsid "$venv/bin/python" manage.py runserver --noreload "127.0.0.1:$port" >"$state/django.log" 2>&1 </dev/null &
django_pid=$!
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/accounts/login/" 2>/dev/null && break
  if ! kill -0 "$django_pid" 2>/dev/null; then
    tail -30 "$state/django.log" >&2
    exit 1
  fi
  sleep 0.25
done

echo
say "The demo is ready after $(elapsed):  http://127.0.0.1:$port/   (log in as demo / demo)"
if [ "$mode" = fake ]; then
  echo "    Airflow: simulated (runs are queued, then running, then succeed after 10 s)."
else
  echo "    Airflow $mode: $airflow_url   (admin / admin)"
fi
echo "    Press Ctrl-C to stop everything."
status=0
wait "$django_pid" || status=$?
echo "Django exited; its log ($state/django.log) ends with:" >&2
tail -10 "$state/django.log" >&2
exit "$status"
