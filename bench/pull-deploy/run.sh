#!/usr/bin/env bash
# Benchmark: `bootc install to-filesystem` from a registry vs `podman pull` of
# the same image from the same registry, and `bootc upgrade` after a
# one-package change and after a real apt-get upgrade, against the full
# install. See README.md next to this script.
#
#   bench/pull-deploy/run.sh
#   BENCH_RUNS=5 BOOTC=bin/bootc BENCH_KEEP=1 bench/pull-deploy/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="${PWD}"
# shellcheck source=bench/lib/registry.sh
source "${ROOT}/bench/lib/registry.sh"
RUNS="${BENCH_RUNS:-3}"
UPGRADE_RUNS="${BENCH_UPGRADE_RUNS:-3}"
BOOTC="${BOOTC:-bin/bootc}"
case "${BOOTC}" in /*) ;; *) BOOTC="${ROOT}/${BOOTC}" ;; esac
RESULTS="${BENCH_RESULTS:-${ROOT}/bench/pull-deploy/results.txt}"
GO_TAGS="${GO_TAGS:-containers_image_openpgp}"
# Fixed commit times, so that every run composes byte-identical images.
TS_V1='2024-05-01T00:00:00Z'
TS_V2='2024-06-01T00:00:00Z'
# The package the one-package update changes (it also owns conffiles in /etc).
PKG=login

die() {
	echo "bench: $*" >&2
	exit 1
}
log() { echo "bench: $*" >&2; }

[[ "$(id -u)" -eq 0 ]] || die "needs root (deployments keep their image's owners; the trees need debootstrap and chroot)"
[[ "${RUNS}" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (run: make deps)"
for tool in go ostree podman runc skopeo docker-registry chattr curl timeout; do
	command -v "${tool}" >/dev/null 2>&1 || die "${tool} missing (run: make deps)"
done
[[ -x /usr/sbin/debootstrap ]] || command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (run: make deps)"
if [[ ! -x "${BOOTC}" ]]; then
	log "building ${BOOTC}"
	CGO_ENABLED=0 go build -tags "${GO_TAGS}" -o "${BOOTC}" ./cmd/bootc
fi
"${BOOTC}" install to-filesystem --help >/dev/null 2>&1 || die "${BOOTC} has no 'install to-filesystem' command"

# Images, sysroots and podman's store live on a real disk filesystem (not
# tmpfs), like the trees. podman's runroot must be shorter than 50 characters.
WORK="$(mktemp -d /var/tmp/bootc-bench-pull.XXXXXX)"
RUNROOT="$(mktemp -d /tmp/pmb.XXXXXX)"
cleanup() {
	registry_stop
	# Deployments are immutable (chattr +i), as libostree makes them.
	chattr -R -f -i "${WORK}"/sys-* "${WORK}/retired" 2>/dev/null || true
	if [[ -x "${WORK}/bin/pm" && -d "${WORK}/podman" ]]; then
		"${WORK}/bin/pm" system reset --force >/dev/null 2>&1 || true
	fi
	rm -rf "${RUNROOT}"
	if [[ -n "${BENCH_KEEP:-}" ]]; then
		log "keeping ${WORK}"
	else
		rm -rf "${WORK}"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private copy of the binary: every measurement uses the same build, even
# if bin/bootc is rebuilt while this runs.
cp "${BOOTC}" "${WORK}/bootc"
BOOTC_SUM="$(sha256sum "${WORK}/bootc" | cut -c1-12)"
BOOTC="${WORK}/bootc"

log "building the helpers"
mkdir -p "${WORK}/bin"
go build -o "${WORK}/bin/debian-kernel-trees" ./internal/testutil/cmd/debian-kernel-trees
go build -o "${WORK}/bin/oci-layers" ./internal/testutil/cmd/oci-layers

log "preparing the Debian trees v1 and v2 (built once, then cached; the first build takes several minutes)"
mapfile -t trees < <("${WORK}/bin/debian-kernel-trees")
((${#trees[@]} == 2)) || die "debian-kernel-trees printed ${#trees[@]} lines, want 2"
V1="${trees[0]}"
V2APT="${trees[1]}"
[[ -d "${V1}" && -d "${V2APT}" ]] || die "debian-kernel-trees printed '${V1}' and '${V2APT}', not directories"

# --- The one-package tree --------------------------------------------------------

# v2pkg = v1 with every regular file of ${PKG} rewritten (a line appended) and
# its Version bumped in var/lib/dpkg/status. It starts as a hardlink copy of
# the cached v1, so each changed file is replaced, never written in place.
log "making the one-package tree (${PKG})"
V2PKG="${WORK}/v2pkg"
cp -al "${V1}" "${V2PKG}"
replace() { # FILE: replaces FILE with ${FILE}.new, keeping owner and mode
	chown --reference="$1" "$1.new"
	chmod --reference="$1" "$1.new"
	mv -f -- "$1.new" "$1"
}
pkg_files=0
while IFS= read -r f; do
	p="${V2PKG}${f}"
	[[ -f "${p}" && ! -L "${p}" ]] || continue
	{ cat -- "${p}" && printf '\n# changed by bench/pull-deploy\n'; } >"${p}.new"
	replace "${p}"
	pkg_files=$((pkg_files + 1))
done <"${V1}/var/lib/dpkg/info/${PKG}.list"
((pkg_files > 0)) || die "package ${PKG} has no regular files in ${V1}"
status="${V2PKG}/var/lib/dpkg/status"
pkg_version="$(awk -v pkg="${PKG}" '/^Package: / { in_pkg = ($2 == pkg) } in_pkg && /^Version: / { print $2; exit }' "${status}")"
[[ -n "${pkg_version}" ]] || die "package ${PKG} has no Version in ${status}"
awk -v pkg="${PKG}" '/^Package: / { in_pkg = ($2 == pkg) } in_pkg && /^Version: / { $0 = $0 "+bench1" } { print }' \
	"${status}" >"${status}.new"
replace "${status}"

# --- Images ------------------------------------------------------------------------

# compose NAME ARGS...: bootc compose image; the manifest digest goes to ${WORK}/NAME.digest.
compose() {
	local name="$1" digest
	shift
	log "compose ${name}"
	"${BOOTC}" compose image -q "$@" >"${WORK}/${name}.out" 2>"${WORK}/${name}.err" ||
		{
			cat "${WORK}/${name}.err" >&2
			die "compose ${name} failed"
		}
	digest="$(tail -n 1 "${WORK}/${name}.out")"
	[[ "${digest}" =~ ^sha256:[0-9a-f]{64}$ ]] || die "compose ${name} printed no manifest digest (got '${digest}')"
	echo "${digest}" >"${WORK}/${name}.digest"
}
O="${WORK}/oci"
compose v1 --rootfs "${V1}" --output "oci:${O}:v1" --timestamp "${TS_V1}" --no-previous-build
compose pkg --rootfs "${V2PKG}" --output "oci:${O}:pkg" --timestamp "${TS_V2}" --previous-build "oci:${O}:v1"
compose apt --rootfs "${V2APT}" --output "oci:${O}:apt" --timestamp "${TS_V2}" --previous-build "oci:${O}:v1"
for tag in v1 pkg apt; do
	"${WORK}/bin/oci-layers" "${O}" "${tag}" >"${WORK}/${tag}.layers"
done

# --- Registry -------------------------------------------------------------------------

# The access log (one line per request with the bytes sent) is what counts the downloads; the
# registry stops by itself even if this script is killed (bench/lib/registry.sh).
registry_start "${WORK}/registry" || die "the registry failed to start"
ACCESS="${REGISTRY_LOG}"
REPO="${REGISTRY}/bench/os"

# tag SRC DST: makes the registry tag DST name what SRC names (oci:... or a tag), keeping digests.
tag() {
	local src="$1"
	[[ "${src}" == oci:* ]] || src="docker://${REPO}:${src}"
	registry_push "${src}" "${REPO}:$2" || die "pushing ${src} as $2 failed"
}
log "pushing the images to ${REPO}"
for t in v1 pkg apt; do
	registry_push "oci:${O}:${t}" "${REPO}:${t}" "$(cat "${WORK}/${t}.digest")" || die "the registry does not serve the composed ${t}"
done

# --- Measuring ---------------------------------------------------------------------------

# measure NAME CMD...: runs CMD under /usr/bin/time after a sync, then a sync
# of its own; writes "wall_s peak_rss_kib cpu_percent sync_s" to
# ${WORK}/NAME.time, and the registry's access log lines of the run to
# ${WORK}/NAME.access.
measure() {
	local name="$1" before t0 t1
	shift
	sync
	sleep 0.2
	before="$(wc -l <"${ACCESS}")"
	if ! /usr/bin/time -f '%e %M %P' -o "${WORK}/${name}.t" "$@" >"${WORK}/${name}.out" 2>"${WORK}/${name}.err"; then
		cat "${WORK}/${name}.err" >&2
		die "${name} failed: $*"
	fi
	t0="$(date +%s.%N)"
	sync
	t1="$(date +%s.%N)"
	# The registry logs a request when its response is complete.
	sleep 0.5
	tail -n +"$((before + 1))" "${ACCESS}" >"${WORK}/${name}.access"
	printf '%s %s\n' "$(tail -n 1 "${WORK}/${name}.t" | tr -d '%')" "$(awk -v a="${t0}" -v b="${t1}" 'BEGIN { printf "%.2f", b - a }')" >"${WORK}/${name}.time"
}

# fetched NAME: the blob GETs of a run: "digest bytes" per request.
fetched() {
	awk '$6 == "\"GET" && $7 ~ /\/blobs\/sha256:[0-9a-f]+$/ && $9 == 200 { n = split($7, p, "/"); print p[n], $10 }' "${WORK}/$1.access"
}
# layers_fetched NAME IMAGE: the layer GETs of NAME, sorted (one line per request).
layers_fetched() {
	fetched "$1" | awk 'NR == FNR { l[$1] = 1; next } ($1 in l)' "${WORK}/$2.layers" - | sort
}
blob_bytes() { fetched "$1" | awk '{ s += $2 } END { print s + 0 }'; }

# pm: podman with a private store, as a script so that /usr/bin/time can run it.
cat >"${WORK}/bin/pm" <<EOF
#!/bin/sh
CONTAINERS_CONF="${WORK}/containers.conf" exec podman --root "${WORK}/podman" --runroot "${RUNROOT}" --storage-driver overlay "\$@"
EOF
chmod +x "${WORK}/bin/pm"
pm() { "${WORK}/bin/pm" "$@"; }
cat >"${WORK}/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
EOF

drop_sysroot() {
	chattr -R -f -i "$1" 2>/dev/null || true
	rm -rf "$1"
}

# retire_sysroot DIR: moves an upgraded sysroot aside, removed only at the end. This disk is ext4
# without a journal, and ext4 then allocates no inode freed in the last 60 seconds (6 minutes
# while its inode table block is unwritten): it scans past them. Removing a 600 MB sysroot right
# before the next run's install and upgrade made every mkdir of the upgrade's checkout scan past
# thousands of such inodes, a cost no host upgrading hours after its last cleanup pays.
retire_sysroot() {
	mkdir -p "${WORK}/retired"
	mv "$1" "${WORK}/retired/${1##*/}.$(date +%s%N)"
}

# run_install NAME: bootc install to-filesystem of :stable into a fresh sysroot
# ${WORK}/sys-NAME, checked.
run_install() {
	local sys="${WORK}/sys-$1" n
	drop_sysroot "${sys}"
	mkdir -p "${sys}"
	measure "$1" "${BOOTC}" install to-filesystem --source-imgref "docker://${REPO}:stable" "${sys}"
	n="$(ostree admin status --sysroot="${sys}" | grep -cE '^[* ] \S+ [0-9a-f]{64}\.[0-9]+')"
	((n == 1)) || die "$1: ostree admin status lists ${n} deployments after install"
}

# run_pull NAME: podman pull of :v1 into an empty store, checked.
run_pull() {
	pm system reset --force >/dev/null 2>&1 || true
	rm -rf "${WORK}/podman"
	measure "$1" "${WORK}/bin/pm" pull -q --tls-verify=false "docker://${REPO}:v1"
	local got
	got="$(pm image inspect --format '{{.Digest}}' "${REPO}:v1")"
	[[ "${got}" == "$(cat "${WORK}/v1.digest")" ]] || die "$1: podman has ${got}, want $(cat "${WORK}/v1.digest")"
}

report() { # NAME LABEL
	local wall rss cpu syncs
	read -r wall rss cpu syncs <"${WORK}/$1.time"
	printf 'bench: %-22s %7.2f s (+%5.2f s sync) %8d KiB %4d%% CPU %10s\n' "$2" "${wall}" "${syncs}" "${rss}" "${cpu}" "$(mib "$(blob_bytes "$1")")" >&2
}
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

tag v1 stable
log "warm-up (one run each, not recorded)"
run_install warmup
drop_sysroot "${WORK}/sys-warmup"
run_pull warmup-podman

# --- (a) install vs podman pull ----------------------------------------------------------

: >"${WORK}/bootc.all"
: >"${WORK}/podman.all"
for ((i = 1; i <= RUNS; i++)); do
	# Alternate which goes first, so neither always follows the other.
	if ((i % 2)); then order=(bootc podman); else order=(podman bootc); fi
	for what in "${order[@]}"; do
		if [[ "${what}" == bootc ]]; then
			run_install "bootc-${i}"
			printf '%s %s\n' "$(cat "${WORK}/bootc-${i}.time")" "$(blob_bytes "bootc-${i}")" >>"${WORK}/bootc.all"
			report "bootc-${i}" "run ${i}/${RUNS} bootc install"
			drop_sysroot "${WORK}/sys-bootc-${i}"
		else
			run_pull "podman-${i}"
			printf '%s %s\n' "$(cat "${WORK}/podman-${i}.time")" "$(blob_bytes "podman-${i}")" >>"${WORK}/podman.all"
			report "podman-${i}" "run ${i}/${RUNS} podman pull"
		fi
	done
done
pm system reset --force >/dev/null 2>&1 || true
rm -rf "${WORK}/podman"

# Every install fetched each layer of v1 exactly once.
awk '{ print $1 }' "${WORK}/v1.layers" | sort -u >"${WORK}/v1.set"
for ((i = 1; i <= RUNS; i++)); do
	layers_fetched "bootc-${i}" v1 | awk '{ print $1 }' >"${WORK}/bootc-${i}.set"
	cmp -s "${WORK}/v1.set" "${WORK}/bootc-${i}.set" || die "install run ${i} did not fetch each layer of v1 exactly once"
done

# --- (b) upgrades --------------------------------------------------------------------------

# upgrade NAME IMAGE: install v1 into a fresh sysroot, point :stable at IMAGE,
# upgrade --check, then upgrade (measured); checks that the upgrade fetched
# exactly the layers IMAGE has and v1 lacks, once each.
upgrade() {
	local name="$1" image="$2" sys="${WORK}/sys-$1" n
	tag v1 stable
	run_install "${name}-install"
	mv "${WORK}/sys-${name}-install" "${sys}"
	tag "${image}" stable
	"${BOOTC}" --sysroot "${sys}" upgrade --check >"${WORK}/${name}-check.out" 2>&1 || die "${name}: upgrade --check failed"
	measure "${name}" "${BOOTC}" --sysroot "${sys}" upgrade
	awk 'NR == FNR { have[$1] = 1; next } !($1 in have) { print $1 }' "${WORK}/v1.layers" "${WORK}/${image}.layers" | sort -u >"${WORK}/${name}.want"
	layers_fetched "${name}" "${image}" | awk '{ print $1 }' >"${WORK}/${name}.set"
	cmp -s "${WORK}/${name}.want" "${WORK}/${name}.set" ||
		die "${name}: upgrade fetched $(wc -l <"${WORK}/${name}.set") layer blobs, want the $(wc -l <"${WORK}/${name}.want") new layers once each"
	grep -q "Download: $(wc -l <"${WORK}/${name}.want") of $(wc -l <"${WORK}/${image}.layers") layers" "${WORK}/${name}-check.out" ||
		die "${name}: upgrade --check did not predict the download: $(cat "${WORK}/${name}-check.out")"
	n="$(ostree admin status --sysroot="${sys}" | grep -cE '^[* ] \S+ [0-9a-f]{64}\.[0-9]+')"
	((n == 2)) || die "${name}: ostree admin status lists ${n} deployments after the upgrade"
	ostree fsck --repo="${sys}/ostree/repo" >"${WORK}/${name}-fsck.out" 2>&1 || die "${name}: ostree fsck failed: $(cat "${WORK}/${name}-fsck.out")"
	report "${name}" "upgrade (${image})"
	retire_sysroot "${sys}"
}

# upgrade_split NAME IMAGE: as upgrade, but in two steps on a fresh install of v1:
# `upgrade --download-only` (NAME-dl, measured: the fetch) and then `upgrade --from-downloaded`
# (NAME, measured: the upgrade excluding the download). Checks that the first step fetched the new
# layers once each, the second nothing, and that the sysroot ends as after a plain upgrade.
upgrade_split() {
	local name="$1" image="$2" sys="${WORK}/sys-$1" n
	tag v1 stable
	run_install "${name}-install"
	mv "${WORK}/sys-${name}-install" "${sys}"
	tag "${image}" stable
	measure "${name}-dl" "${BOOTC}" --sysroot "${sys}" upgrade --download-only
	measure "${name}" "${BOOTC}" --sysroot "${sys}" upgrade --from-downloaded
	awk 'NR == FNR { have[$1] = 1; next } !($1 in have) { print $1 }' "${WORK}/v1.layers" "${WORK}/${image}.layers" | sort -u >"${WORK}/${name}.want"
	layers_fetched "${name}-dl" "${image}" | awk '{ print $1 }' >"${WORK}/${name}-dl.set"
	cmp -s "${WORK}/${name}.want" "${WORK}/${name}-dl.set" ||
		die "${name}: upgrade --download-only fetched $(wc -l <"${WORK}/${name}-dl.set") layer blobs, want the $(wc -l <"${WORK}/${name}.want") new layers once each"
	[[ "$(blob_bytes "${name}")" == 0 ]] || die "${name}: upgrade --from-downloaded fetched blobs"
	n="$(ostree admin status --sysroot="${sys}" | grep -cE '^[* ] \S+ [0-9a-f]{64}\.[0-9]+')"
	((n == 2)) || die "${name}: ostree admin status lists ${n} deployments after the upgrade"
	ostree fsck --repo="${sys}/ostree/repo" >"${WORK}/${name}-fsck.out" 2>&1 || die "${name}: ostree fsck failed: $(cat "${WORK}/${name}-fsck.out")"
	report "${name}-dl" "upgrade --download-only (${image})"
	report "${name}" "upgrade --from-downloaded (${image})"
	retire_sysroot "${sys}"
}
# Each upgrade BENCH_UPGRADE_RUNS times, from a fresh install of v1 each time; the table gives
# the medians (a single upgrade takes about a second, so one run is mostly noise).
# First a minute for the inodes (a) freed to age out (see retire_sysroot).
log "waiting 61 s for the inodes freed by (a) to be reusable (see retire_sysroot)"
sync
sleep 61
for u in pkg apt; do
	for ((r = 1; r <= UPGRADE_RUNS; r++)); do
		upgrade "up-${u}-${r}" "${u}"
		cat "${WORK}/up-${u}-${r}.time" >>"${WORK}/up-${u}.all"
		upgrade_split "split-${u}-${r}" "${u}"
		cat "${WORK}/split-${u}-${r}-dl.time" >>"${WORK}/split-${u}-dl.all"
		cat "${WORK}/split-${u}-${r}.time" >>"${WORK}/split-${u}.all"
	done
	# Every run fetched the same layers (checked by upgrade); the first stands for them.
	cp "${WORK}/up-${u}-1.set" "${WORK}/up-${u}.set"
	cp "${WORK}/up-${u}-1.access" "${WORK}/up-${u}.access"
done

# --- Results -----------------------------------------------------------------------------

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{ print $c }' "${WORK}/$1.all" | median; }
maxcol() { awk -v c="$2" 'BEGIN { m = 0 } $c > m { m = $c } END { print m }' "${WORK}/$1.all"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }
kib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
size() { awk '{ s += $2 } END { print s + 0 }' "${WORK}/$1.layers"; }
new_bytes() { awk 'NR == FNR { have[$1] = 1; next } !($1 in have) && !($1 in seen) { seen[$1] = 1; s += $2 } END { print s + 0 }' "${WORK}/v1.layers" "${WORK}/$1.layers"; }

bootc_wall="$(col bootc 1)"
podman_wall="$(col podman 1)"
bootc_bytes="$(col bootc 5)"
time_ratio="$(ratio "${bootc_wall}" "${podman_wall}")"
target_install=no
awk -v r="${time_ratio}" 'BEGIN { exit !(r <= 1.0) }' && target_install=yes
pkg_list="$(join -t $'\t' "$(dirname "${V1}")/packages.txt" "$(dirname "${V2APT}")/packages.txt" | awk -F'\t' '$2 != $3 { printf "%s%s", sep, $1; sep = ", " }')"

{
	echo "# bootc install/upgrade from a registry vs podman pull"
	echo "date:       $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "nproc:      $(nproc)"
	echo "podman:     $(podman --version | awk '{ print $3 }'), ostree $(ostree --version | awk -F"'" '/Version:/ { print $2; exit }'), go $(go version | awk '{ print $3 }')"
	echo "bootc:      $(git -C "${ROOT}" describe --always --dirty 2>/dev/null || echo unknown), binary sha256 ${BOOTC_SUM}"
	echo "image v1:   Debian bookworm minbase + linux-image-amd64 (v1 of bench/update-size), $(du -sh "${V1}" | awk '{ print $1 }');" \
		"$(wc -l <"${WORK}/v1.layers") gzip layers, $(mib "$(size v1)"), $(cat "${WORK}/v1.digest")"
	echo "pkg:        v1 with the ${pkg_files} files of ${PKG} (${pkg_version}) changed and its version bumped;" \
		"--previous-build v1, $(cat "${WORK}/pkg.digest")"
	echo "apt:        v1 + apt-get upgrade (v2 of bench/update-size: ${pkg_list}); --previous-build v1, $(cat "${WORK}/apt.digest")"
	echo "registry:   docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $3 }') on 127.0.0.1, filesystem storage in /var/tmp; downloads counted from its access log"
	echo "runs:       ${RUNS} per side after 1 warm-up each, alternating; fresh sysroot / podman store per run"
	echo
	echo "(a) install vs pull of v1"
	printf '%-40s %9s %9s %12s %12s %6s %12s\n' "" "median s" "+sync s" "median RSS" "peak RSS" "CPU" "downloaded"
	printf '%-40s %9.2f %9.2f %12s %12s %5d%% %12s\n' "bootc install to-filesystem" "${bootc_wall}" "$(col bootc 4)" \
		"$(kib "$(col bootc 2)")" "$(kib "$(maxcol bootc 2)")" "$(col bootc 3)" "$(mib "${bootc_bytes}")"
	printf '%-40s %9.2f %9.2f %12s %12s %5d%% %12s\n' "podman pull" "${podman_wall}" "$(col podman 4)" \
		"$(kib "$(col podman 2)")" "$(kib "$(maxcol podman 2)")" "$(col podman 3)" "$(mib "$(col podman 5)")"
	echo "time ratio bootc/podman: ${time_ratio} (target <= 1.0: ${target_install});" \
		"with the sync: $(ratio "$(awk -v a="${bootc_wall}" -v b="$(col bootc 4)" 'BEGIN { print a + b }')" "$(awk -v a="${podman_wall}" -v b="$(col podman 4)" 'BEGIN { print a + b }')")"
	echo
	echo "(b) upgrade from v1 (median of ${UPGRADE_RUNS} runs each, a fresh install of v1 before each; vs the median bootc install of (a))"
	printf '%-40s %9s %9s %12s %8s %12s %10s %10s\n' "" "wall s" "+sync s" "peak RSS" "layers" "downloaded" "time/inst" "bytes/inst"
	for u in pkg apt; do
		dl="$(blob_bytes "up-${u}")"
		label="upgrade to ${u}"
		[[ "${u}" == pkg ]] && label="upgrade to pkg (1 package)"
		[[ "${u}" == apt ]] && label="upgrade to apt ($(echo "${pkg_list}" | tr ',' '\n' | wc -l) packages)"
		printf '%-40s %9.2f %9.2f %12s %8s %12s %10s %10s\n' "${label}" "$(col "up-${u}" 1)" "$(col "up-${u}" 4)" \
			"$(kib "$(maxcol "up-${u}" 2)")" "$(wc -l <"${WORK}/up-${u}.set")/$(wc -l <"${WORK}/${u}.layers")" "$(mib "${dl}")" \
			"$(pct "$(col "up-${u}" 1)" "${bootc_wall}")" "$(pct "${dl}" "${bootc_bytes}")"
	done
	echo
	echo "(b') the same upgrades in two steps, on a fresh install of v1 each: the fetch, then the upgrade excluding the download"
	printf '%-40s %9s %9s %12s %12s %10s\n' "" "wall s" "+sync s" "peak RSS" "downloaded" "time/inst"
	for u in pkg apt; do
		printf '%-40s %9.2f %9.2f %12s %12s %10s\n' "${u}: upgrade --download-only" "$(col "split-${u}-dl" 1)" "$(col "split-${u}-dl" 4)" \
			"$(kib "$(maxcol "split-${u}-dl" 2)")" "$(mib "$(blob_bytes "split-${u}-1-dl")")" "$(pct "$(col "split-${u}-dl" 1)" "${bootc_wall}")"
		printf '%-40s %9.2f %9.2f %12s %12s %10s\n' "${u}: upgrade --from-downloaded" "$(col "split-${u}" 1)" "$(col "split-${u}" 4)" \
			"$(kib "$(maxcol "split-${u}" 2)")" "$(mib "$(blob_bytes "split-${u}-1")")" "$(pct "$(col "split-${u}" 1)" "${bootc_wall}")"
	done
	echo "upgrade excluding download (--from-downloaded, median): pkg $(col split-pkg 1) s, apt $(col split-apt 1) s (target for pkg <= 0.40 s:" \
		"$(awk -v w="$(col split-pkg 1)" 'BEGIN { print (w <= 0.40) ? "yes" : "no" }'))"
	echo "upgrade including download (one command, median of (b)): pkg $(col up-pkg 1) s, apt $(col up-apt 1) s"
	echo
	echo "downloaded = bytes of blob GETs (layers and config) in the registry's access log during the command;"
	echo "the layers fetched were exactly the layers new in the image, once each (checked), and the new layers"
	echo "sum to: pkg $(mib "$(new_bytes pkg)"), apt $(mib "$(new_bytes apt)") (the update-size bench's 'download')."
	echo "bytes: install ${bootc_bytes}, upgrade pkg $(blob_bytes up-pkg), apt $(blob_bytes up-apt)"
} | tee "${RESULTS}"
log "results written to ${RESULTS#"${ROOT}"/}"
