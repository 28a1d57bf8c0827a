#!/bin/sh
# ops and pylxd (what the original charm's integration-test requirer runs with; pylxd brings
# cryptography, which makes this charm's keys) from PyPI into ./venv, for the interpreter
# dispatch uses. pyOpenSSL too: pylxd's ws4py imports it when it can, and the distribution's
# (found after ./venv) breaks against the newer cryptography here. Idempotent: a no-op when the
# same specs are already there.
set -eu
cd "$(dirname "$0")"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
SPEC='ops>=2.17,<4 pylxd pyopenssl'
STAMP="$SPEC $("$PY" -c 'import sys; print(sys.version.split()[0])')"
if [ -f venv/.installed ] && [ "$(cat venv/.installed)" = "$STAMP" ] \
    && PYTHONPATH=venv "$PY" -c 'import ops, pylxd, cryptography, OpenSSL' 2>/dev/null; then
    exit 0
fi
rm -rf venv
if "$PY" -m pip --version >/dev/null 2>&1; then PIP="$PY -m pip"; else PIP="python3 -m pip"; fi
# shellcheck disable=SC2086 # SPEC is several requirements
$PIP install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
    --target venv $SPEC
printf '%s\n' "$STAMP" > venv/.installed
