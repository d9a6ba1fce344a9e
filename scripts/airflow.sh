#!/usr/bin/env bash
# Install, start and stop a real Airflow on 127.0.0.1 for the contract tests and
# the demo. Each major gets its own virtual environment, cached outside the
# checkout so repeated runs skip the install.
#
#   scripts/airflow.sh install 3|2     create the venv and an empty database (idempotent)
#   scripts/airflow.sh start 3|2 DAGS  start `airflow standalone` in its own session, wait until healthy
#   scripts/airflow.sh stop 3|2        stop it and every process it started
#   scripts/airflow.sh url 3|2         print the API base URL
#
# Airflow 3.3 uses the simple auth manager, Airflow 2.11 basic auth; both admin/admin.
# The DAGs can import airflow_client.callbacks; where they send events comes from the
# caller's AIRFLOW_CONN_DJANGO_AIRFLOW_CLIENT (unset: no events are sent). The task DAGs
# (airflow_client.dags) find the Django site to run tasks in from the caller's
# AIRFLOW_CLIENT_TASKS_PYTHON / _SETTINGS / _CWD (scripts/test.sh sets them).
#
# Defaults (the test suite's): Airflow 3 on 127.0.0.1:28080, home $cache/airflow-home-3,
# log servers 28793/28794; Airflow 2 on 28082, airflow-home-2, 28795/28796. Another
# instance (the demo) runs beside them with these overridden:
#   DAC_AIRFLOW_PORT, DAC_AIRFLOW_HOME, DAC_AIRFLOW_LOG_PORT, DAC_AIRFLOW_TRIGGER_LOG_PORT
# (AIRFLOW3_PORT / AIRFLOW2_PORT still set one major's port).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${DAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/django-airflow-client}
python=${AIRFLOW_PYTHON:-$(ls -d "$HOME"/.pyenv/versions/3.11*/bin/python 2>/dev/null | sort -V | tail -1)}
python=${python:-python3.11}

major=${2:-3}
# Each major moves its log-server ports off the defaults (8793/8794) so both run at once.
case "$major" in
  3) version=3.3.2; size=260; port=${AIRFLOW3_PORT:-28080}; logport=28793; trigport=28794 ;;
  2) version=2.11.2; size=220; port=${AIRFLOW2_PORT:-28082}; logport=28795; trigport=28796 ;;
  *) echo "major must be 2 or 3" >&2; exit 2 ;;
esac
port=${DAC_AIRFLOW_PORT:-$port}
logport=${DAC_AIRFLOW_LOG_PORT:-$logport}
trigport=${DAC_AIRFLOW_TRIGGER_LOG_PORT:-$trigport}
venv=$cache/airflow-$version
# A migrated database (with the admin user on Airflow 2), copied into each fresh
# home: migrating takes 15-30 s, copying nothing.
template=$cache/airflow-db-$version
home=${DAC_AIRFLOW_HOME:-$cache/airflow-home-$major}
pidfile=$home/standalone.pid

uv() { "$here/uv.sh" "$@"; }

install() {
  mkdir -p "$cache"
  # The test suite and the demo may install the same version at once: one at a time.
  if command -v flock >/dev/null; then exec 9>"$cache/.airflow-$version.lock"; flock 9; fi
  if ! [ -x "$venv/bin/airflow" ] || ! [ -f "$venv/.complete" ]; then
    echo "Installing Airflow $version into $venv (about $size MB, 1-2 min on first use; cached afterwards)" >&2
    rm -rf "$venv"
    uv venv -q --python "$python" "$venv"
    # Not -q: the first install is a large download and the user should see it move.
    VIRTUAL_ENV=$venv uv pip install "apache-airflow==$version" >&2
    touch "$venv/.complete"
  fi
  if ! [ -f "$venv/.compiled" ]; then
    echo "Compiling Airflow $version's modules once (about 30 s)" >&2
    # With PYTHONDONTWRITEBYTECODE set (as here) every component would compile
    # Airflow's 4000 modules again at each start: compiled once, `airflow` starts 2x faster.
    "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null 2>&1 || true
    touch "$venv/.compiled"
  fi
  if ! [ -f "$template/airflow.db" ]; then
    echo "Creating Airflow $version's database template once (about 30 s)" >&2
    local scratch=$template.tmp
    rm -rf "$scratch"; mkdir -p "$scratch"
    (
      export AIRFLOW_HOME=$scratch AIRFLOW__CORE__LOAD_EXAMPLES=False
      "$venv/bin/airflow" db migrate
      if [ "$major" = 2 ]; then
        # `standalone` would invent a random password, and `users reset-password`
        # crashes on 2.11, so the user exists before standalone looks for it.
        "$venv/bin/airflow" users create -u admin -p admin -r Admin -f Admin -l User -e admin@example.invalid
        # The webserver would otherwise spend seconds of each start granting the roles their permissions.
        "$venv/bin/airflow" sync-perm
      fi
    ) >"$scratch/install.log" 2>&1 || { tail -30 "$scratch/install.log" >&2; return 1; }
    rm -rf "$template"; mkdir -p "$template"
    cp "$scratch"/airflow.db* "$template/"  # with a -wal file if SQLite left one
    rm -rf "$scratch"
  fi
  if command -v flock >/dev/null; then flock -u 9; fi
}

start() {
  local dags=${3:?DAG folder}
  dags=$(cd "$dags" && pwd)
  install
  stop
  rm -rf "$home"; mkdir -p "$home"
  cp "$template"/airflow.db* "$home/"
  export AIRFLOW_HOME=$home
  # standalone spawns its components as `airflow ...` found on PATH.
  export PATH=$venv/bin:$PATH
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__DAGS_FOLDER=$dags
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
  # The DAGs import airflow_client.callbacks from this checkout. Only the package is put
  # on the path (Airflow's environment has no Django: nothing else of it is imported there).
  mkdir -p "$home/pythonpath"
  ln -sfn "$(cd "$here/.." && pwd)/airflow_client" "$home/pythonpath/airflow_client"
  export PYTHONPATH=$home/pythonpath${PYTHONPATH:+:$PYTHONPATH}
  # Airflow's SQLite database: its processes write at once, and sqlite3's 5 s wait for a
  # lock ends, on a busy 2-core machine, in an API answer 500 ("database is locked").
  # Wait longer, and let readers go on while one writes (WAL).
  echo 'CONNECT_ARGS = {"timeout": 20}' >"$home/pythonpath/airflow_sqlite_wait.py"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=airflow_sqlite_wait.CONNECT_ARGS
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC=airflow_sqlite_wait.CONNECT_ARGS
  "$venv/bin/python" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("pragma journal_mode=wal")' "$home/airflow.db"
  export AIRFLOW__CORE__PARALLELISM=4
  export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$logport
  export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$trigport
  # Every component must sign and check tokens with the same keys; pin them
  # rather than rely on each process reading the same generated airflow.cfg.
  local secret; secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  export AIRFLOW__API_AUTH__JWT_SECRET=$secret
  export AIRFLOW__API__SECRET_KEY=$secret
  export AIRFLOW__WEBSERVER__SECRET_KEY=$secret
  # Test speed: see DAG files within seconds, start queued tasks at once.
  export AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL=5
  export AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL=5
  export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=5
  export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
  export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=1
  export AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC=1
  export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.2
  export AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL=1
  export AIRFLOW__CORE__MIN_SERIALIZED_DAG_FETCH_INTERVAL=1
  if [ "$major" = 3 ]; then
    export AIRFLOW__API__HOST=127.0.0.1
    export AIRFLOW__API__PORT=$port
    export AIRFLOW__API__BASE_URL=http://127.0.0.1:$port/
    # Tasks report back here; the default (port 8080) makes every task fail.
    export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$port/execution/
    # A task reports to the API server as it runs; on a busy 2-core machine the default
    # 5 s wait ends in a timeout that fails the task although it worked.
    export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT=30
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$home/passwords.json
    echo '{"admin": "admin"}' >"$home/passwords.json"
  else
    export AIRFLOW__WEBSERVER__WEB_SERVER_HOST=127.0.0.1
    export AIRFLOW__WEBSERVER__WEB_SERVER_PORT=$port
    export AIRFLOW__WEBSERVER__BASE_URL=http://127.0.0.1:$port
    export AIRFLOW__WEBSERVER__WORKERS=1
    # session is listed too because the UI needs it (Airflow warns otherwise).
    export AIRFLOW__API__AUTH_BACKENDS=airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session
    # On SQLite standalone would pick the SequentialExecutor, which runs one task at a
    # time inside the scheduler loop (a 20 s task freezes everything). The LocalExecutor
    # forks workers instead; Airflow 2 only refuses it on SQLite behind this switch.
    export AIRFLOW__CORE__EXECUTOR=LocalExecutor
    export _AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK=1
    # The finishing task's own "mini scheduler" races the (fast-looping) scheduler for
    # the next task, and 2.10+ then counts a first attempt as try 2. One scheduler is enough.
    export AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION=False
  fi
  setsid airflow standalone >"$home/standalone.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_healthy || { stop; return 1; }
}

# Healthy = the API answers, the scheduler heartbeats and admin/admin logs in.
wait_healthy() {
  local base=http://127.0.0.1:$port health login
  if [ "$major" = 3 ]; then
    health=$base/api/v2/monitor/health
    login=(-X POST -H 'Content-Type: application/json' -d '{"username":"admin","password":"admin"}' "$base/auth/token")
  else
    health=$base/health
    login=(-u admin:admin "$base/api/v1/dags?limit=1")
  fi
  for _ in $(seq 1 240); do
    if curl -fsS -m 5 "$health" 2>/dev/null | grep -Eq '"scheduler": *\{[^}]*"status": *"healthy"' \
      && curl -fsS -m 5 -o /dev/null "${login[@]}" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "airflow $version exited; log: $home/standalone.log" >&2
      tail -30 "$home/standalone.log" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "airflow $version not healthy after 120 s; log: $home/standalone.log" >&2
  return 1
}

# The process group of standalone plus every descendant: task runners move to
# their own groups (Airflow 2 even to their own session), so the group alone misses them.
members() {
  ps -eo pid=,ppid=,pgid= | awk -v root="$1" '
    { pid[NR] = $1; ppid[NR] = $2; if ($3 == root || $1 == root) keep[$1] = 1 }
    END {
      do { grew = 0
        for (i = 1; i <= NR; i++) if (!(pid[i] in keep) && (ppid[i] in keep)) { keep[pid[i]] = 1; grew = 1 }
      } while (grew)
      for (p in keep) print p
    }'
}

# True while any of the pids runs (zombies, dead but not yet reaped, do not count).
alive() {
  ps -o stat= -p "$(echo "$@" | tr ' ' ,)" 2>/dev/null | grep -qv '^Z'
}

stop() {
  [ -f "$pidfile" ] || return 0
  local root pids
  root=$(cat "$pidfile")
  pids=$(members "$root")
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    # A clean shutdown buys nothing (the next start wipes the home), so wait briefly.
    for _ in $(seq 1 10); do
      # shellcheck disable=SC2086
      alive $pids || break
      sleep 0.5
    done
    # shellcheck disable=SC2086
    kill -KILL $pids $(members "$root") 2>/dev/null || true
    for _ in $(seq 1 10); do
      # shellcheck disable=SC2086
      alive $pids || break
      sleep 0.2
    done
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  install) install ;;
  start) start "$@" ;;
  stop) stop ;;
  url) echo "http://127.0.0.1:$port" ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
