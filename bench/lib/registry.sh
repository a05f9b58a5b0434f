# Sourced by the benchmarks: a private docker-registry on 127.0.0.1 whose
# access log counts the bytes clients download.
#
#   registry_start DIR          starts it (storage and log under DIR); sets
#                               REGISTRY (host:port) and REGISTRY_LOG
#   registry_stop               stops it (call from the EXIT trap)
#   registry_push SRC DST       skopeo copy SRC (oci:... or docker://...) to
#                               docker://DST keeping digests; with a third
#                               argument, checks that DST has that digest
#   registry_mark               prints the access log's current line count
#   registry_since MARK         prints the access log lines after MARK
#   registry_blob_gets          filter: access log lines -> "digest status bytes"
#                               for every blob GET answered 200 or 206
#
# The registry stops by itself after REGISTRY_LIFETIME (default 60m), even if
# the script that started it is killed. Needs docker-registry, skopeo, curl
# and timeout.

REGISTRY=""
REGISTRY_LOG=""
REGISTRY_PID=""

registry_start() {
	local dir="$1" port="" p
	for p in $(seq 5491 5591); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then
			port="${p}"
			break
		fi
	done
	[[ -n "${port}" ]] || {
		echo "registry: no free port between 5491 and 5591" >&2
		return 1
	}
	mkdir -p "${dir}"
	cat >"${dir}/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: ${dir}/storage
http:
  addr: 127.0.0.1:${port}
EOF
	# The access log (stdout, one line per request with the bytes sent).
	REGISTRY_LOG="${dir}/access.log"
	timeout "${REGISTRY_LIFETIME:-60m}" docker-registry serve "${dir}/registry.yml" >"${REGISTRY_LOG}" 2>&1 &
	REGISTRY_PID=$!
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:${port}/v2/" >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -fs "http://127.0.0.1:${port}/v2/" >/dev/null || {
		echo "registry: docker-registry did not come up on 127.0.0.1:${port}" >&2
		return 1
	}
	REGISTRY="127.0.0.1:${port}"
}

registry_stop() {
	if [[ -n "${REGISTRY_PID}" ]]; then
		kill "${REGISTRY_PID}" 2>/dev/null || true
		wait "${REGISTRY_PID}" 2>/dev/null || true
		REGISTRY_PID=""
	fi
}

registry_push() {
	local src="$1" dst="$2" want="${3:-}" got
	skopeo copy -q --preserve-digests --src-tls-verify=false --dest-tls-verify=false "${src}" "docker://${dst}" || {
		echo "registry: skopeo copy ${src} -> ${dst} failed" >&2
		return 1
	}
	[[ -n "${want}" ]] || return 0
	got="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://${dst}")"
	[[ "${got}" == "${want}" ]] || {
		echo "registry: ${dst} is ${got}, want ${want}" >&2
		return 1
	}
}

registry_mark() { wc -l <"${REGISTRY_LOG}"; }

registry_since() {
	# The registry logs a request when its response is complete.
	sleep 0.5
	tail -n +"$(($1 + 1))" "${REGISTRY_LOG}"
}

registry_blob_gets() {
	awk '$6 == "\"GET" && $7 ~ /\/blobs\/sha256:[0-9a-f]+$/ && ($9 == 200 || $9 == 206) {
		n = split($7, p, "/"); print p[n], $9, $10 }'
}
