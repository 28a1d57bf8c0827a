#!/bin/sh
# Copy the charm library into ./lib and install ops into ./venv for the interpreter dispatch
# uses. Idempotent: a no-op when the same library and ops spec are already there.
set -eu
cd "$(dirname "$0")"
# The charm library, where `charmcraft fetch-lib charms.lxd_integrator.v0.lxd` would put it.
LIB=lib/charms/lxd_integrator/v0/lxd.py
mkdir -p "$(dirname "$LIB")"
cmp -s "../../$LIB" "$LIB" || cp "../../$LIB" "$LIB"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
SPEC='ops>=2.17,<4'
STAMP="$SPEC $("$PY" -c 'import sys; print(sys.version.split()[0])')"
if [ -f venv/.installed ] && [ "$(cat venv/.installed)" = "$STAMP" ] \
    && PYTHONPATH=venv "$PY" -c 'import ops' 2>/dev/null; then
    exit 0
fi
rm -rf venv
if "$PY" -m pip --version >/dev/null 2>&1; then PIP="$PY -m pip"; else PIP="python3 -m pip"; fi
$PIP install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
    --target venv "$SPEC"
printf '%s\n' "$STAMP" > venv/.installed
