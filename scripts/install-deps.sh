#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the benchmarks need, and
# the Go tools Debian lacks (cosign), built with `go install` into
# $BOOTC_TOOLS_BIN (default /var/cache/bootc-tests/bin as root, else
# $(go env GOPATH)/bin), where the tests look for them (internal/testutil).
# Idempotent: does nothing when everything is already installed.
# Runs as root (or via sudo when available) and never reads stdin.
set -euo pipefail

# One package per word; extend this list as the test suite grows.
PACKAGES="ostree debootstrap attr zstd time rpm podman skopeo runc netavark docker-registry busybox-static libbtrfs-dev fdisk xfsprogs qemu-system-x86 qemu-utils grub-common grub-pc-bin grub-efi-amd64-bin grub-emu ovmf dosfstools mtools etcd-server etcd-client"

# Go tools: command, then module@version; one per line.
GO_TOOLS="cosign github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5"

install_debian_packages() {
	local missing=() pkg status
	for pkg in ${PACKAGES}; do
		status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
		if [[ "${status}" != "install ok installed" ]]; then
			missing+=("${pkg}")
		fi
	done

	if ((${#missing[@]} == 0)); then
		return 0
	fi

	local sudo=()
	if [[ "$(id -u)" -ne 0 ]]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo=(sudo -n)
		else
			echo "install-deps: need root to install: ${missing[*]}" >&2
			exit 1
		fi
	fi

	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

install_go_tools() {
	local bin="${BOOTC_TOOLS_BIN:-}"
	if [[ -z "${bin}" ]]; then
		if [[ "$(id -u)" -eq 0 ]]; then
			bin=/var/cache/bootc-tests/bin
		else
			bin="$(go env GOPATH | cut -d: -f1)/bin"
		fi
	fi
	local cmd pkg
	while read -r cmd pkg; do
		if [[ -x "${bin}/${cmd}" ]] || command -v "${cmd}" >/dev/null 2>&1; then
			continue
		fi
		echo "install-deps: building ${pkg} into ${bin} (about 3 minutes the first time)"
		mkdir -p "${bin}"
		CGO_ENABLED=0 GOBIN="${bin}" go install "${pkg}" </dev/null
	done <<<"${GO_TOOLS}"
}

install_debian_packages
install_go_tools
