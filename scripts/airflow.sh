#!/usr/bin/env bash
# Install, start and stop a real Airflow on 127.0.0.1 for the contract tests and
# the demo. Each major gets its own virtual environment, cached outside the
# checkout so repeated runs skip the install.
#
#   scripts/airflow.sh install 3|2     create the venv (idempotent)
#   scripts/airflow.sh start 3|2 DAGS  start `airflow standalone` in its own process group
#   scripts/airflow.sh stop 3|2        stop that process group
#   scripts/airflow.sh url 3|2         print the API base URL
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${DAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/django-airflow-client}
python=${AIRFLOW_PYTHON:-$HOME/.pyenv/versions/3.11.7/bin/python}

major=${2:-3}
case "$major" in
  3) version=3.3.2; port=${AIRFLOW3_PORT:-28080}; logport=28793; trigport=28794 ;;
  2) version=2.11.2; port=${AIRFLOW2_PORT:-28082}; logport=28795; trigport=28796 ;;
  *) echo "major must be 2 or 3" >&2; exit 2 ;;
esac
venv=$cache/airflow-$version
home=$cache/airflow-home-$major
pidfile=$home/standalone.pid

uv() { "$here/uv.sh" "$@"; }

install() {
  if [ -x "$venv/bin/airflow" ] && [ -f "$venv/.complete" ]; then return 0; fi
  rm -rf "$venv"
  uv venv -q --python "$python" "$venv"
  VIRTUAL_ENV=$venv uv pip install -q "apache-airflow==$version"
  touch "$venv/.complete"
}

start() {
  local dags=${3:?DAG folder}
  install
  stop >/dev/null 2>&1 || true
  rm -rf "$home"; mkdir -p "$home"
  export AIRFLOW_HOME=$home
  export PATH=$venv/bin:$PATH
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__DAGS_FOLDER=$dags
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
  export AIRFLOW__CORE__PARALLELISM=4
  export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$logport
  export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$trigport
  export AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL=5
  export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
  export AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL=5
  if [ "$major" = 3 ]; then
    export AIRFLOW__API__HOST=127.0.0.1
    export AIRFLOW__API__PORT=$port
    export AIRFLOW__API__BASE_URL=http://127.0.0.1:$port/
    export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$port/execution/
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$home/passwords.json
    echo '{"admin": "admin"}' > "$home/passwords.json"
  else
    export AIRFLOW__WEBSERVER__WEB_SERVER_HOST=127.0.0.1
    export AIRFLOW__WEBSERVER__WEB_SERVER_PORT=$port
    export AIRFLOW__WEBSERVER__BASE_URL=http://127.0.0.1:$port
    export AIRFLOW__API__AUTH_BACKENDS=airflow.api.auth.backend.basic_auth
    export AIRFLOW__WEBSERVER__WORKERS=1
  fi
  setsid airflow standalone >"$home/standalone.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  wait_healthy
  if [ "$major" = 2 ]; then
    # standalone generates a random admin password; pin it so tests and the demo can log in.
    airflow users reset-password -u admin -p admin >/dev/null 2>&1 \
      || airflow users create -u admin -p admin -r Admin -f a -l a -e admin@example.invalid >/dev/null
  fi
}

wait_healthy() {
  local health
  if [ "$major" = 3 ]; then health=/api/v2/monitor/health; else health=/health; fi
  for _ in $(seq 1 180); do
    if curl -fsS "http://127.0.0.1:$port$health" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "airflow $version exited; log: $home/standalone.log" >&2; tail -30 "$home/standalone.log" >&2; return 1
    fi
    sleep 1
  done
  echo "airflow $version not healthy after 180 s; log: $home/standalone.log" >&2
  return 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  install) install ;;
  start) start "$@" ;;
  stop) stop ;;
  url) echo "http://127.0.0.1:$port" ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
