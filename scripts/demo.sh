#!/usr/bin/env bash
# The whole loop, offline, in about a minute: compose a tiny bootable OS into a chunked
# image, publish it to a registry on loopback, install it into a sysroot directory,
# publish v2, then upgrade --check, upgrade, status, rollback, status (the README's tour). The real
# `ostree admin status` and `ostree fsck` check what bootc wrote along the way. Then a fleet act:
# both versions as releases of a stream, the update agent moving the host along the graph
# under a FleetLock server's only reboot slot.
#
#   make demo                  (installs dependencies and builds bin/bootc first)
#   BOOTC=bin/bootc scripts/demo.sh
#
# Needs: bin/bootc, ostree, busybox (busybox-static), docker-registry, setfattr. Run as root
# (deployments are owned by root and carry their image's permissions).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BOOTC="${BOOTC:-bin/bootc}"
case "${BOOTC}" in /*) ;; */*) BOOTC="${PWD}/${BOOTC}" ;; esac

step() { printf '\n==> %s\n' "$*"; }
run() {
	printf '+ %s\n' "$*"
	"$@"
}
# bootc runs the binary under test, showing the command as the README writes it.
bootc() {
	printf '+ bootc %s\n' "$*"
	"${BOOTC}" "$@"
}
die() {
	printf 'demo: FAILED: %s\n' "$*" >&2
	exit 1
}

command -v "${BOOTC}" >/dev/null 2>&1 || die "${BOOTC} not found (run: make build)"
for tool in ostree busybox docker-registry chattr setfattr; do
	command -v "${tool}" >/dev/null 2>&1 || die "${tool} not found (run: make deps)"
done
[[ "$(id -u)" == 0 ]] || die "run as root: deployments keep their image's owners"

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/bootc-demo.XXXXXX")"
REGISTRY_PID=""
LOCK_PID=""
cleanup() {
	local status=$?
	set +e
	if [[ -n "${REGISTRY_PID}" ]]; then kill "${REGISTRY_PID}" 2>/dev/null; fi
	if [[ -n "${LOCK_PID}" ]]; then kill "${LOCK_PID}" 2>/dev/null; fi
	# Deployments are immutable (chattr +i), as libostree makes them.
	if [[ -d "${WORK}/sysroot/ostree/deploy" ]]; then chattr -R -i "${WORK}/sysroot/ostree/deploy" 2>/dev/null; fi
	rm -rf "${WORK}"
	exit "${status}"
}
trap cleanup EXIT

step "1. Start a registry on loopback (docker-registry, storage in ${WORK})"
port=""
for p in $(seq 5391 5491); do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then
		port="${p}"
		break
	fi
done
[[ -n "${port}" ]] || die "no free port between 5391 and 5491"
cat >"${WORK}/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: ${WORK}/registry
http:
  addr: 127.0.0.1:${port}
EOF
# timeout: the registry stops by itself even if this script is killed.
timeout 15m docker-registry serve "${WORK}/registry.yml" >"${WORK}/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then break; fi
	sleep 0.1
done
IMAGE="127.0.0.1:${port}/demo/tinyos:stable"
echo "registry at 127.0.0.1:${port}; the image is ${IMAGE}"

# make_os DIR VERSION: a tiny OS with busybox, a stand-in kernel and initramfs, /etc
# defaults and /var content.
make_os() {
	local os="$1" version="$2"
	mkdir -p "${os}/usr/bin" "${os}/etc/demo" "${os}/var/lib/demo" "${os}/usr/lib/modules/6.1.0-demo"
	cp /bin/busybox "${os}/usr/bin/busybox"
	# A component of its own: its layer stays the same from build to build.
	setfattr -n user.component -v busybox "${os}/usr/bin/busybox"
	for app in sh cat ls; do ln -sf busybox "${os}/usr/bin/${app}"; done
	ln -sfn usr/bin "${os}/bin"
	printf 'ID=tinyos\nVERSION_ID=%s\nPRETTY_NAME="Tiny OS %s"\n' "${version}" "${version}" >"${os}/etc/os-release"
	echo "welcome to Tiny OS" >"${os}/etc/motd"
	echo "colour=blue" >"${os}/etc/demo/theme.conf"
	echo "level=${version}" >"${os}/etc/demo/defaults.conf"
	echo "first boot data" >"${os}/var/lib/demo/seed"
	echo "not really a kernel" >"${os}/usr/lib/modules/6.1.0-demo/vmlinuz"
	echo "not really an initramfs" >"${os}/usr/lib/modules/6.1.0-demo/initramfs.img"
}

# The tour: README.md's "Quick tour" quotes the lines between the markers verbatim, and
# cmd/bootc/tour_test.go checks that it does and runs this script.
# tour-begin
step "2. Compose Tiny OS 1.0 into a chunked bootable image and push it"
make_os "${WORK}/v1" 1.0
SOURCE_DATE_EPOCH=1700000000 bootc compose image --rootfs "${WORK}/v1" --output "docker://${IMAGE}" -q

step "3. Install it into a sysroot directory"
SYSROOT="${WORK}/sysroot"
mkdir -p "${SYSROOT}"
bootc install to-filesystem --source-imgref "docker://${IMAGE}" --karg console=ttyS0 "${SYSROOT}"
bootc status --sysroot "${SYSROOT}" --format humanreadable
run ostree admin status --sysroot="${SYSROOT}"

step "4. Edit /etc locally in the deployment"
DEPLOY="$(ls -d "${SYSROOT}"/ostree/deploy/default/deploy/*.0)"
echo "colour=green" >"${DEPLOY}/etc/demo/theme.conf"
echo "mine" >"${DEPLOY}/etc/demo/local.conf"
rm "${DEPLOY}/etc/motd"

step "5. Compose Tiny OS 2.0 (one new tool, new defaults) and push it"
make_os "${WORK}/v2" 2.0
printf '#!/bin/sh\necho new in 2.0\n' >"${WORK}/v2/usr/bin/newtool"
chmod 0755 "${WORK}/v2/usr/bin/newtool"
SOURCE_DATE_EPOCH=1700086400 bootc compose image --rootfs "${WORK}/v2" --output "docker://${IMAGE}" -q

step "6. Check for the update (manifest and config only), then upgrade: only changed layers are fetched"
bootc upgrade --sysroot "${SYSROOT}" --check
bootc upgrade --sysroot "${SYSROOT}"
bootc status --sysroot "${SYSROOT}" --format humanreadable

step "7. Roll back to 1.0"
bootc rollback --sysroot "${SYSROOT}"
bootc status --sysroot "${SYSROOT}" --format json --booted
# tour-end

step "8. Check: /etc kept the local edits, and the real ostree agrees"
NEW=""
for d in "${SYSROOT}"/ostree/deploy/default/deploy/*.0; do
	if [[ -e "${d}/usr/bin/newtool" ]]; then NEW="${d}"; fi
done
[[ -n "${NEW}" ]] || die "no deployment has usr/bin/newtool"
grep -q green "${NEW}/etc/demo/theme.conf" || die "the local edit of theme.conf was lost"
[[ -f "${NEW}/etc/demo/local.conf" ]] || die "the locally added local.conf was lost"
[[ ! -e "${NEW}/etc/motd" ]] || die "the locally deleted motd came back"
grep -q 'level=2.0' "${NEW}/etc/demo/defaults.conf" || die "the untouched default did not follow the image"
echo "/etc in the new deployment: local edits kept (theme=green, local.conf, no motd); untouched default follows 2.0"
run ostree admin status --sysroot="${SYSROOT}"
run ostree fsck --repo="${SYSROOT}/ostree/repo"

step "9. A fleet act: releases in the registry, an update agent and a FleetLock server"
# The images are reproducible: composing 1.0 and 2.0 again gives the same digests, now under
# version tags, and the host's booted 1.0 is a release of the stream.
REPO="${IMAGE%:*}"
SOURCE_DATE_EPOCH=1700000000 bootc compose image --rootfs "${WORK}/v1" --output "docker://${REPO}:1.0" -q
SOURCE_DATE_EPOCH=1700086400 bootc compose image --rootfs "${WORK}/v2" --output "docker://${REPO}:2.0" -q
bootc release add --stream stable --version 1.0 "docker://${REPO}:1.0"
bootc release add --stream stable --version 2.0 --rollout-start-percentage 0.5 --rollout-duration 1h "docker://${REPO}:2.0"
bootc release list --stream stable "docker://${REPO}"
lockport=""
for p in $(seq 5591 5691); do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then
		lockport="${p}"
		break
	fi
done
[[ -n "${lockport}" ]] || die "no free port between 5591 and 5691"
# One slot; the server stops by itself even if this script is killed.
timeout 5m "${BOOTC}" fleetlock serve --memory --listen "127.0.0.1:${lockport}" --slots 1 2>"${WORK}/fleetlock.log" &
LOCK_PID=$!
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/${lockport}") 2>/dev/null; then break; fi
	sleep 0.1
done
# The host (booted 1.0 after the rollback) gets a machine id and the agent's configuration.
BOOTED="$(ls -d "${SYSROOT}"/ostree/deploy/default/deploy/*.0 | head -n1)"
for d in "${SYSROOT}"/ostree/deploy/default/deploy/*.[0-9]; do
	if grep -q 'VERSION_ID=1.0' "${d}/etc/os-release" 2>/dev/null; then BOOTED="${d}"; fi
done
echo 0123456789abcdef0123456789abcdef >"${BOOTED}/etc/machine-id"
mkdir -p "${BOOTED}/etc/bootc/update.d"
cat >"${BOOTED}/etc/bootc/update.d/50-demo.toml" <<EOF
[updates]
strategy = "fleet_lock"
stream = "stable"

[updates.fleet_lock]
base_url = "http://127.0.0.1:${lockport}"

[identity]
rollout_wariness = 0.2
EOF
run cat "${BOOTED}/etc/bootc/update.d/50-demo.toml"
echo "The agent walks the graph (2.0 is rolling out; wariness 0.2 is early enough), takes the only"
echo "reboot slot and deploys 2.0; a sysroot directory cannot reboot, so it says so:"
out="$(bootc update-agent --sysroot "${SYSROOT}" --once | tee /dev/stderr)"
[[ "${out}" == *"reboot needed"*"holds a FleetLock reboot slot"* ]] || die "the agent did not deploy 2.0 with the slot"
if "${BOOTC}" fleetlock lock --url "http://127.0.0.1:${lockport}" --id another-host >/dev/null 2>&1; then
	die "a second host got the only reboot slot"
fi
echo "another host asking for a slot now is refused: the only slot is held"
echo "After the \"reboot\" 2.0 is the booted deployment: the agent gives the slot back."
out="$(bootc update-agent --sysroot "${SYSROOT}" --once | tee /dev/stderr)"
[[ "${out}" == *"up to date"* && "${out}" != *"holds a FleetLock"* ]] || die "the agent did not release the slot on 2.0"
bootc fleetlock lock --url "http://127.0.0.1:${lockport}" --id another-host
bootc fleetlock unlock --url "http://127.0.0.1:${lockport}" --id another-host
bootc status --sysroot "${SYSROOT}" --format humanreadable
kill "${LOCK_PID}" 2>/dev/null || true
run ostree fsck --repo="${SYSROOT}/ostree/repo"

printf '\ndemo: OK\n'
