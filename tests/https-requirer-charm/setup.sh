#!/bin/sh
# ops for the interpreter dispatch uses: the `lxd` test requirer's venv (tests/requirer-charm,
# whose setup.sh installs it), linked by absolute path so the link still resolves in the unit
# directories the simulator copies the charm into. Idempotent.
set -eu
cd "$(dirname "$0")"
sh ../requirer-charm/setup.sh
VENV="$(cd ../requirer-charm && pwd)/venv"
[ "$(readlink venv 2>/dev/null || true)" = "$VENV" ] || ln -sfn "$VENV" venv
