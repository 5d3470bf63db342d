# Shared by scripts/demo and scripts/test: a cached virtualenv outside the checkout, keyed by pyproject.toml.
# Usage: source scripts/env.sh; fairdesk_venv [EXTRAS]   -> sets VENV and puts it first on PATH
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FAIRDESK_CACHE="${FAIRDESK_CACHE:-$HOME/.cache/fairdesk}"
export FAIRDESK_CACHE

fairdesk_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  echo "fairdesk: Python 3.11 or newer is needed" >&2; return 1
}

# pip's build chatter goes to a log; it is shown only when pip fails.
_pip() {
  local log="$VENV/pip.log"
  "$VENV/bin/pip" install --quiet "${@:2}" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
}

fairdesk_venv() {
  local extras="${1:-}" py key
  py="$(fairdesk_python)"
  key="$( (cat "$ROOT/pyproject.toml"; "$py" -V) | sha256sum | cut -c1-12)"
  VENV="$FAIRDESK_CACHE/venv-$key"
  # One builder at a time: two scripts starting together would otherwise install into the same new venv at once.
  mkdir -p "$FAIRDESK_CACHE"
  exec 9>"$FAIRDESK_CACHE/.venv-lock"
  flock 9
  if [ ! -x "$VENV/bin/python" ]; then
    echo "fairdesk: creating a virtualenv in $VENV" >&2
    "$py" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
  fi
  local stamp="$VENV/.installed${extras:+-$extras}"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "fairdesk: installing fairdesk${extras:+[$extras]} (first time takes a minute or two)" >&2
    _pip install -e "$ROOT${extras:+[$extras]}"
    touch "$stamp"
  else
    # Re-link the editable install to this checkout (the venv is shared between clones).
    _pip install --no-deps -e "$ROOT${extras:+[$extras]}"
  fi
  flock -u 9
  export PATH="$VENV/bin:$PATH"
  export VENV
}
