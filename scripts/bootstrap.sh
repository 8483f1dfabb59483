#!/usr/bin/env bash
# Prepare this machine for `make run` (bootstrap.sh run) or `make test` (bootstrap.sh test):
# the OS packages for the embedded servers (and Chromium for tests), then .venv from
# requirements/. Each step is skipped when already done, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
PYTHON=${PYTHON:-python3}

missing=()
have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; }
if [ -z "${DATABASE_URL:-}" ] && ! have_postgres; then missing+=(postgresql); fi
# Tests also start a throwaway Redis of their own, whatever REDIS_URL says.
if { [ -z "${REDIS_URL:-}" ] || [ "$mode" = test ]; } && ! command -v redis-server >/dev/null; then
  missing+=(redis-server)
fi
if [ "$mode" = test ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
# Chinese glyphs in the browser tests' screenshots.
if [ "$mode" = test ] && [ ! -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then missing+=(fonts-wqy-zenhei); fi
# Uploads: libmagic sniffs content types, pdftoppm (poppler) renders PDF previews.
if ! "$PYTHON" -c "import ctypes.util, sys; sys.exit(not ctypes.util.find_library('magic'))"; then
  missing+=(libmagic1)
fi
if ! command -v pdftoppm >/dev/null; then missing+=(poppler-utils); fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "Missing OS packages: ${missing[*]}. Install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing OS packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

requirements=requirements/base.txt
[ "$mode" = test ] && requirements=requirements/dev.txt
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$requirements" .txt)"
digest=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "Installing Python packages from $requirements"
  .venv/bin/pip install --disable-pip-version-check -q -r "$requirements"
  echo "$digest" > "$stamp"
fi
