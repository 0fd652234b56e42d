#!/usr/bin/env bash
# Runs the interop matrix between the host and plugin peers and prints a
# Markdown table; every cell's JSON line (plus the cell's parameters) goes to
# OUT.jsonl.
#
#   peers/matrix.sh [OUT.jsonl]
#
# Environment:
#   HOSTS, PLUGINS   space-separated peer names (default "go python"; "rust"
#                    works through run-pair.sh's RPCPLUGIN_RUST_KV_* variables)
#   TRANSPORTS       default "unix tcp" (RPCPLUGIN_KV_TRANSPORT for the plugin)
#   AUTO_KEY_TYPES   --key-type values tried with --tls auto
#                    (default "auto p256 p384 p521 rsa2048")
#   MANUAL_KEY_TYPES openssl PKIs tried with --tls manual
#                    (default "p256 p384 p521 rsa2048")
#   TIMEOUT_MS       per-cell --timeout-ms (default 15000)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$(mktemp -t rpcplugin-matrix.XXXXXX.jsonl)}"
: > "$out"
HOSTS="${HOSTS:-go python}"
PLUGINS="${PLUGINS:-go python}"
TRANSPORTS="${TRANSPORTS:-unix tcp}"
AUTO_KEY_TYPES="${AUTO_KEY_TYPES:-auto p256 p384 p521 rsa2048}"
MANUAL_KEY_TYPES="${MANUAL_KEY_TYPES:-p256 p384 p521 rsa2048}"
TIMEOUT_MS="${TIMEOUT_MS:-15000}"

pki="$(mktemp -d -t rpcplugin-pki.XXXXXX)"
trap 'rm -rf "$pki"' EXIT
for kt in $MANUAL_KEY_TYPES; do
    "$here/tls/make-certs.sh" "$pki/$kt" "$kt"
done

# Build/set up once, before the cells.
for p in $HOSTS $PLUGINS; do
    case "$p" in
        go) "$here/go/build.sh" ;;
        python) "$here/python/setup.sh" ;;
    esac
done

cell() { # host plugin transport tls keytype [extra env...] -- [args...]
    local host="$1" plugin="$2" transport="$3" tls="$4" kt="$5"; shift 5
    local envs=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
    shift
    local line
    line="$(env "${envs[@]}" RPCPLUGIN_KV_TRANSPORT="$transport" \
        "$here/run-pair.sh" "$host" "$plugin" --tls "$tls" --timeout-ms "$TIMEOUT_MS" "$@" 2>/dev/null | tail -n 1)"
    [[ -n "$line" ]] || line='{"ok":false,"error":"no JSON line from host"}'
    printf '{"cell":{"host":"%s","plugin":"%s","requested_transport":"%s","tls":"%s","key_type":"%s"},"result":%s}\n' \
        "$host" "$plugin" "$transport" "$tls" "$kt" "$line" >> "$out"
    printf '.' >&2
}

for host in $HOSTS; do
  for plugin in $PLUGINS; do
    for tr in $TRANSPORTS; do
      cell "$host" "$plugin" "$tr" off auto --
      for kt in $AUTO_KEY_TYPES; do
        cell "$host" "$plugin" "$tr" auto "$kt" -- --key-type "$kt"
      done
      for kt in $MANUAL_KEY_TYPES; do
        d="$pki/$kt"
        cell "$host" "$plugin" "$tr" manual "$kt" \
          RPCPLUGIN_KV_TLS_CERT="$d/server.pem" RPCPLUGIN_KV_TLS_KEY="$d/server.key" RPCPLUGIN_KV_TLS_CA="$d/ca.pem" -- \
          --cert "$d/client.pem" --key "$d/client.key" --ca "$d/ca.pem"
      done
    done
  done
done
echo >&2

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cols = ["host", "plugin", "req. transport", "tls", "key type", "ok", "transport", "TLS", "peer key", "host key", "start ms", "1st RPC ms", "error"]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
def f(v):
    if v is None: return "–"
    if isinstance(v, bool): return "yes" if v else "**no**"
    if isinstance(v, float): return f"{v:.0f}"
    return str(v).replace("|", "\\|")
n_ok = 0
for r in rows:
    c, x = r["cell"], r["result"]
    n_ok += bool(x.get("ok"))
    err = x.get("error") or ""
    if len(err) > 220: err = err[:217] + "..."
    print("| " + " | ".join(f(v) for v in [c["host"], c["plugin"], c["requested_transport"], c["tls"], c["key_type"],
        bool(x.get("ok")), x.get("transport"), x.get("tls_version"), x.get("peer_key_type"), x.get("host_key_type"),
        x.get("start_ms"), x.get("first_rpc_ms")]) + " | " + f(err or None) + " |")
print(f"\n{n_ok} passed, {len(rows) - n_ok} failed")
PY
echo "results: $out" >&2
