#!/usr/bin/env bash
# Run uv, installing it first into a cached tool venv (a fresh machine has none).
set -euo pipefail
cache=${DAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/django-airflow-client}
tools=$cache/tools
if [ ! -x "$tools/bin/uv" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q uv
fi
exec "$tools/bin/uv" "$@"
