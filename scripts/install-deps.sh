#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the benchmarks need.
# Idempotent: does nothing when everything is already installed.
# Runs as root (or via sudo when available) and never reads stdin.
set -euo pipefail

# One package per word; extend this list as the test suite grows.
PACKAGES="ostree debootstrap attr zstd time rpm podman skopeo runc netavark docker-registry busybox-static libbtrfs-dev"

missing=()
for pkg in ${PACKAGES}; do
	status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
	if [[ "${status}" != "install ok installed" ]]; then
		missing+=("${pkg}")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo -n)
	else
		echo "install-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
