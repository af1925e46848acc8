#!/usr/bin/env bashio
# shellcheck shell=bash
# ==============================================================================
# HSI Detector add-on: turns the add-on options (/data/options.json, read with
# bashio) into the command line of `hsi-detector` (the server's console script,
# which pip installed in the image, see the Dockerfile) and execs it, so the
# server is PID 1's only child and receives SIGTERM directly.
#
# Not exposed as options, on purpose:
#   --host/--port      fixed 0.0.0.0:8765 in the container; remap the host port
#                      in the add-on's Network settings instead.
#   --network-mode     always "addon": plaintext is then allowed on the internal
#                      add-on network, the key is still required everywhere.
#   --allow-plaintext  implied by --network-mode addon.
#   --tls-dir          /data/tls, so a self-signed certificate (and the
#                      fingerprint the integration pins) survives restarts.
#   --export-dir       /data/exports: a model exported for the openvino/onnx
#                      runtime once is reused on every later start.
#   --api-key(-file)   the key travels in HSI_API_KEY, never on a command line
#                      (where `ps` would show it).
# ==============================================================================
set -euo pipefail

# The Supervisor's mounts; overridable only so addon/tests can run this script outside a container.
readonly DATA_DIR="${ADDON_DATA_DIR:-/data}"
readonly SSL_DIR="${ADDON_SSL_DIR:-/ssl}"

# A bare file name means "in /ssl"; an absolute path (e.g. /share/...) is kept.
ssl_path() {
    local name=${1}
    if [[ "${name}" == /* ]]; then
        printf '%s' "${name}"
    else
        printf '%s/%s' "${SSL_DIR}" "${name}"
    fi
}

bashio::config.require 'api_key' 'every request to the detector must carry this key'
HSI_API_KEY="$(bashio::config 'api_key')"
export HSI_API_KEY

args=(
    --host 0.0.0.0
    --port 8765
    --network-mode addon
    --tls-dir "${DATA_DIR}/tls"
    --export-dir "${DATA_DIR}/exports"
    --engine "$(bashio::config 'engine')"
    --runtime "$(bashio::config 'runtime')"
    --model "$(bashio::config 'model')"
    --device "$(bashio::config 'device')"
    --half "$(bashio::config 'half')"
    --imgsz "$(bashio::config 'imgsz')"
    --confidence "$(bashio::config 'confidence')"
    --max-batch-size "$(bashio::config 'max_batch_size')"
    --max-batch-wait-ms "$(bashio::config 'max_batch_wait_ms')"
    --max-queue "$(bashio::config 'max_queue')"
    --decode-workers "$(bashio::config 'decode_workers')"
    --cpu-threads "$(bashio::config 'cpu_threads')"
    --cpu-streams "$(bashio::config 'cpu_streams')"
    --request-timeout "$(bashio::config 'request_timeout')"
    --tls "$(bashio::config 'tls')"
    --max-body-mb "$(bashio::config 'max_body_mb')"
    --max-pixels "$(bashio::config 'max_pixels')"
    --max-request-pixels "$(bashio::config 'max_request_pixels')"
    --header-timeout "$(bashio::config 'header_timeout')"
    --body-timeout "$(bashio::config 'body_timeout')"
    --keepalive-timeout "$(bashio::config 'keepalive_timeout')"
    --max-connections-per-client "$(bashio::config 'max_connections_per_client')"
    --rate-limit "$(bashio::config 'rate_limit')"
    --auth-fail-limit "$(bashio::config 'auth_fail_limit')"
    --log-level "$(bashio::config 'log_level')"
)

if bashio::config.has_value 'int8_calibration'; then
    args+=(--int8-calibration "$(bashio::config 'int8_calibration')")
fi

if bashio::config.has_value 'labels'; then
    args+=(--labels "$(bashio::config 'labels')")
fi

# bashio prints a list option one element per line; the server wants commas.
if bashio::config.has_value 'classes'; then
    args+=(--classes "$(bashio::config 'classes' | paste -sd, -)")
fi

if bashio::config.equals 'tls' 'provided'; then
    args+=(--tls-cert "$(ssl_path "$(bashio::config 'certfile')")")
    args+=(--tls-key "$(ssl_path "$(bashio::config 'keyfile')")")
fi

if bashio::config.has_value 'client_ca'; then
    args+=(--tls-client-ca "$(ssl_path "$(bashio::config 'client_ca')")")
fi

if bashio::config.true 'warmup'; then
    args+=(--warmup)
else
    args+=(--no-warmup)
fi

# Model names (yolo11n.pt) are downloaded by ultralytics into the working
# directory: keep them in /data so they are fetched once, not on every start.
mkdir -p "${DATA_DIR}/models" "${DATA_DIR}/tls"
cd "${DATA_DIR}/models"

# Supervisor discovery (config.yaml: discovery): once the server answers, hand the integration what it
# needs to connect, so the user types nothing: the add-on's host name, the port, the key, whether TLS
# is on and the SHA-256 fingerprint of the certificate the server serves (what the integration pins).
# It runs beside the server: this script execs the server below, so the server keeps this PID ($$)
# and the announcement gives up as soon as that process is gone. Announced on every start, so a new
# certificate or key reaches the integration too.
# Whether a process still runs (a zombie does not: until its parent reaps it, kill -0 says it does).
running() {
    local state
    state="$(sed 's/.*) //' "/proc/${1}/stat" 2>/dev/null | cut -d' ' -f1)" && [[ -n "${state}" && "${state}" != Z ]]
}

announce() {
    local server_pid=$$ scheme=https tls=true fingerprint="" cert config
    if bashio::config.equals 'tls' 'disabled'; then
        scheme=http
        tls=false
    fi
    until curl -fsk --max-time 5 -o /dev/null "${scheme}://127.0.0.1:8765/health"; do
        running "${server_pid}" || return 0
        sleep 1
    done
    if [[ "${tls}" == true ]]; then
        cert="${DATA_DIR}/tls/cert.pem"
        if bashio::config.equals 'tls' 'provided'; then
            cert="$(ssl_path "$(bashio::config 'certfile')")"
        fi
        # "sha256 Fingerprint=AB:CD:..." -> 64 lower-case hex digits.
        fingerprint="$(openssl x509 -in "${cert}" -noout -fingerprint -sha256 \
            | cut -d= -f2 | tr -d ':' | tr 'A-F' 'a-f')"
    fi
    config="$(jq -n \
        --arg host "$(bashio::addon.hostname)" \
        --arg api_key "${HSI_API_KEY}" \
        --arg fingerprint "${fingerprint}" \
        --argjson tls "${tls}" \
        '{host: $host, port: 8765, api_key: $api_key, tls: $tls,
          fingerprint: (if $fingerprint == "" then null else $fingerprint end)}')"
    if bashio::discovery "home_security_intel" "${config}" > /dev/null; then
        bashio::log.info "Announced the detector to Home Assistant (Supervisor discovery)"
    else
        bashio::log.warning "Could not announce the detector to Home Assistant; add it by URL instead"
    fi
}

bashio::log.info "Starting HSI Detector (engine $(bashio::config 'engine'), runtime $(bashio::config 'runtime'), model $(bashio::config 'model'))"
announce &
exec hsi-detector "${args[@]}"
