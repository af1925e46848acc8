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
    --request-timeout "$(bashio::config 'request_timeout')"
    --tls "$(bashio::config 'tls')"
    --max-body-mb "$(bashio::config 'max_body_mb')"
    --max-pixels "$(bashio::config 'max_pixels')"
    --rate-limit "$(bashio::config 'rate_limit')"
    --auth-fail-limit "$(bashio::config 'auth_fail_limit')"
    --log-level "$(bashio::config 'log_level')"
)

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

bashio::log.info "Starting HSI Detector (engine $(bashio::config 'engine'), runtime $(bashio::config 'runtime'), model $(bashio::config 'model'))"
exec hsi-detector "${args[@]}"
