#!/usr/bin/env bash
# End-to-end demo of what exists today: the `bootc ostree` plumbing commands,
# checked against the real ostree(1), then a tiny bootable OS built into a
# chunked container image that skopeo inspects and podman runs.
#
#   make demo                  (installs dependencies and builds bin/bootc first)
#   BOOTC=bin/bootc scripts/demo.sh
#
# Needs: bin/bootc, ostree, setfattr/getfattr (package attr), busybox, podman,
# runc, skopeo. Run as root so that ownership and the setuid bit survive checkout.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BOOTC="${BOOTC:-bin/bootc}"
case "${BOOTC}" in /*) ;; */*) BOOTC="${PWD}/${BOOTC}" ;; esac

step() { printf '\n==> %s\n' "$*"; }
run() {
	printf '+ %s\n' "$*"
	"$@"
}
die() {
	printf 'demo: FAILED: %s\n' "$*" >&2
	exit 1
}

command -v "${BOOTC}" >/dev/null 2>&1 || die "${BOOTC} not found (run: make build)"
for tool in ostree setfattr getfattr diff busybox podman runc skopeo; do
	command -v "${tool}" >/dev/null 2>&1 || die "${tool} not found (run: make deps)"
done

# /var/tmp rather than /tmp: a tmpfs may lack user xattrs.
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/bootc-demo.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
DIR="${WORK}/tree"
REPO="${WORK}/repo"
OUT="${WORK}/checkout"
REF="demo/x86_64"

step "1. Generate a small, varied tree in ${DIR}"
mkdir -p "${DIR}/etc" "${DIR}/usr/bin" "${DIR}/usr/share/doc" "${DIR}/var/empty"
printf 'hello from bootc\n' >"${DIR}/etc/motd"
printf 'NAME=demo\nVERSION_ID=1\n' >"${DIR}/usr/share/os-release"
head -c $((3 * 1024 * 1024)) /dev/urandom >"${DIR}/usr/share/doc/big.bin"
printf '#!/bin/sh\necho demo\n' >"${DIR}/usr/bin/demo"
chmod 0755 "${DIR}/usr/bin/demo"
ln -s ../share/os-release "${DIR}/usr/bin/os-release-link"
ln "${DIR}/usr/bin/demo" "${DIR}/usr/bin/demo-hardlink"
printf 'privileged\n' >"${DIR}/usr/bin/setuid-helper"
chmod 4755 "${DIR}/usr/bin/setuid-helper"
printf 'labelled\n' >"${DIR}/etc/labelled.conf"
setfattr -n user.demo -v "demo-value" "${DIR}/etc/labelled.conf"
printf 'grüße\n' >"${DIR}/usr/share/doc/grüße-日本語.txt"
find "${DIR}" -printf '%M %u:%g %7s %P\n' | sort -k4

step "2. Create a bare-user repository"
run "${BOOTC}" ostree init --repo "${REPO}" --mode bare-user

step "3. Commit the tree"
printf '+ %s\n' "${BOOTC} ostree commit --repo ${REPO} -b ${REF} --subject 'demo commit' ${DIR}"
commit_out="$("${BOOTC}" ostree commit --repo "${REPO}" -b "${REF}" --subject "demo commit" "${DIR}")"
printf '%s\n' "${commit_out}"
CHECKSUM="$(printf '%s\n' "${commit_out}" | tail -n 1)"
[[ "${CHECKSUM}" =~ ^[0-9a-f]{64}$ ]] || die "commit did not print a checksum (got '${CHECKSUM}')"
echo "commit: ${CHECKSUM}"

step "4. Show the commit and list its tree (bootc)"
run "${BOOTC}" ostree show --repo "${REPO}" "${REF}"
run "${BOOTC}" ostree ls --repo "${REPO}" -R "${REF}"

step "5. Check the repository with the real ostree"
run ostree fsck --repo="${REPO}"
run ostree ls --repo="${REPO}" -R -C -X "${REF}"
resolved="$(ostree rev-parse --repo="${REPO}" "${REF}")"
[[ "${resolved}" == "${CHECKSUM}" ]] || die "ostree resolves ${REF} to ${resolved}, bootc printed ${CHECKSUM}"

step "6. Same commit checksum as ostree for identical input"
ts='2021-01-01 00:00:00 UTC'
run "${BOOTC}" ostree init --repo "${WORK}/ours" --mode bare-user
run ostree init --repo="${WORK}/theirs" --mode=bare-user
ours="$("${BOOTC}" ostree commit --repo "${WORK}/ours" -b check --no-bindings --timestamp "${ts}" --subject "demo commit" "${DIR}" | tail -n 1)"
theirs="$(ostree commit --repo="${WORK}/theirs" -b check --no-bindings --timestamp="${ts}" --subject="demo commit" "${DIR}" | tail -n 1)"
echo "bootc:  ${ours}"
echo "ostree: ${theirs}"
[[ "${ours}" == "${theirs}" ]] || die "commit checksums differ"

step "7. Check out with bootc and compare with the source tree"
run "${BOOTC}" ostree checkout --repo "${REPO}" "${REF}" "${OUT}"
run diff -r --no-dereference "${DIR}" "${OUT}"
mode="$(stat -c '%a' "${OUT}/usr/bin/setuid-helper")"
[[ "${mode}" == "4755" ]] || die "setuid-helper has mode ${mode} after checkout, want 4755"
echo "setuid bit kept: usr/bin/setuid-helper mode ${mode}"
xattr="$(getfattr --absolute-names --only-values -n user.demo "${OUT}/etc/labelled.conf")"
[[ "${xattr}" == "demo-value" ]] || die "user.demo is '${xattr}' after checkout, want 'demo-value'"
echo "xattr kept: etc/labelled.conf user.demo=${xattr}"

step "8. Verify the repository with bootc"
run "${BOOTC}" ostree fsck --repo "${REPO}"

step "9. Compose a tiny bootable OS (busybox, a stand-in kernel) into a chunked image"
OS="${WORK}/tinyos"
mkdir -p "${OS}/usr/bin" "${OS}/etc" "${OS}/boot" "${OS}/usr/lib/modules/6.1.0-demo"
cp /bin/busybox "${OS}/usr/bin/busybox"
for app in sh cat ls; do ln -s busybox "${OS}/usr/bin/${app}"; done
ln -s usr/bin "${OS}/bin"
printf 'ID=tinyos\nVERSION_ID=1.0\nPRETTY_NAME="Tiny OS 1.0"\n' >"${OS}/etc/os-release"
echo "hello from a bootc image" >"${OS}/etc/motd"
echo "not really a kernel" >"${OS}/boot/vmlinuz-6.1.0-demo"
IMG="${WORK}/tinyos.ociarchive"
SOURCE_DATE_EPOCH=1700000000 run "${BOOTC}" compose image --rootfs "${OS}" --output "oci-archive:${IMG}" -q
run skopeo inspect --format 'labels: containers.bootc={{index .Labels "containers.bootc"}} ostree.linux={{index .Labels "ostree.linux"}} version={{index .Labels "org.opencontainers.image.version"}}' "oci-archive:${IMG}"

step "10. Run it with podman"
PM="${WORK}/podman"
mkdir -p "${PM}"
RUNROOT="$(mktemp -d /tmp/pmXXXX)"
cat >"${PM}/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
[network]
network_backend = "netavark"
CONF
pm() { CONTAINERS_CONF="${PM}/containers.conf" podman --root "${PM}/root" --runroot "${RUNROOT}" --storage-driver overlay "$@"; }
motd="$(pm run --rm --network none "oci-archive:${IMG}" /bin/sh -c 'cat /etc/motd' 2>/dev/null)"
pm system reset --force >/dev/null 2>&1 || true
rm -rf "${RUNROOT}"
echo "the container says: ${motd}"
[[ "${motd}" == "hello from a bootc image" ]] || die "podman run printed '${motd}'"

printf '\ndemo: OK\n'
