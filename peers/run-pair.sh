#!/usr/bin/env bash
# Runs one interop cell and prints the host's JSON line (see CONTRACT.md).
#
#   peers/run-pair.sh HOST PLUGIN [kv-host args...]
#
# HOST and PLUGIN are a language name or a path to an executable:
#   go      peers/go/bin/kv-{host,plugin} (built by peers/go/build.sh if missing)
#   python  peers/python/kv-{host,plugin} (venv made by peers/python/setup.sh)
#   rust    $RPCPLUGIN_RUST_KV_HOST / $RPCPLUGIN_RUST_KV_PLUGIN
# The plugin's transport and manual TLS come from the environment
# (RPCPLUGIN_KV_TRANSPORT, RPCPLUGIN_KV_TLS_CERT/KEY/CA), which the host
# passes on to the plugin. Exit status is the host's (0 ok, 1 not ok).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { # one JSON line, like a host that could not run
    printf '{"client":"%s","ok":false,"error":"run-pair: %s","protocol_version":null,"transport":null,"address":null,"tls_mode":null,"tls_version":null,"cipher":null,"peer_key_type":null,"host_key_type":null,"value_ok":null,"start_ms":null,"first_rpc_ms":null,"total_ms":null}\n' "$1" "$2"
    exit 1
}

[[ $# -ge 2 ]] || die "none" "usage: run-pair.sh HOST PLUGIN [kv-host args...]"
host="$1"; plugin="$2"; shift 2

resolve() { # ROLE(host|plugin) NAME -> path on stdout
    local role="$1" name="$2"
    case "$name" in
        go)
            if [[ ! -x "$here/go/bin/kv-$role" ]]; then
                "$here/go/build.sh" >&2 || return 1
            fi
            echo "$here/go/bin/kv-$role" ;;
        python)
            "$here/python/setup.sh" >&2 || return 1
            echo "$here/python/kv-$role" ;;
        rust)
            local var="RPCPLUGIN_RUST_KV_${role^^}"
            [[ -n "${!var:-}" && -x "${!var}" ]] || { echo "set $var to the Rust kv-$role executable" >&2; return 1; }
            echo "${!var}" ;;
        *)
            [[ -x "$name" ]] || { echo "$name is not an executable" >&2; return 1; }
            echo "$name" ;;
    esac
}

hostbin="$(resolve host "$host")" || die "$host" "cannot resolve host '$host'"
pluginbin="$(resolve plugin "$plugin")" || die "$host" "cannot resolve plugin '$plugin'"
exec "$hostbin" --plugin "$pluginbin" "$@"
