#!/usr/bin/env bash
# Creates peers/python/.venv with the pinned requirements. Idempotent: when the
# venv exists and was built from the same requirements.txt and interpreter, it
# returns at once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"
stamp="$venv/.rpcplugin-setup-stamp"
py="${PYTHON:-python3.11}"

if ! command -v "$py" >/dev/null 2>&1; then
    echo "setup.sh: $py not found (pyvider-rpcplugin needs Python >= 3.11; set PYTHON=...)" >&2
    exit 1
fi
want="$(sha256sum "$req" | cut -d' ' -f1) $("$py" -c 'import sys; print(sys.version.split()[0])')"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req"
"$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null
echo "$want" > "$stamp"
echo "setup.sh: created $venv" >&2
