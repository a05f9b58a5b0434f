#!/usr/bin/env bash
# Benchmark: how many bytes a host holding image v1 downloads to update to v2.
# On the wire, counted at a real registry (docker-registry's access log)
# during `bootc upgrade`: whole gzip layers, whole zstd:chunked layers
# (BOOTC_PARTIAL_PULL=0) and a partial pull of the same zstd:chunked images,
# against the file-level ideal; and from the OCI layouts: chunked images built
# with and without the previous build and single-layer images. Also checks
# that the three upgrades deploy identical trees. See README.md next to this
# script.
#
#   bench/update-size/run.sh
#   BOOTC=bin/bootc BENCH_CORPUS=kernel BENCH_KEEP=1 bench/update-size/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="${PWD}"
# shellcheck source=bench/lib/registry.sh
source "${ROOT}/bench/lib/registry.sh"
BOOTC="${BOOTC:-bin/bootc}"
case "${BOOTC}" in /*) ;; *) BOOTC="${ROOT}/${BOOTC}" ;; esac
# The trees: "server" (default) or "kernel" (see debian-kernel-trees).
CORPUS="${BENCH_CORPUS:-server}"
RESULTS="${BENCH_RESULTS:-${ROOT}/bench/update-size/results.txt}"
[[ -n "${BENCH_RESULTS:-}" || "${CORPUS}" == server ]] || RESULTS="${ROOT}/bench/update-size/results-${CORPUS}.txt"
GO_TAGS="${GO_TAGS:-containers_image_openpgp}"
# Fixed commit times, so that every run composes byte-identical images.
TS_V1='2024-05-01T00:00:00Z'
TS_V2='2024-06-01T00:00:00Z'

die() {
	echo "bench: $*" >&2
	exit 1
}
log() { echo "bench: $*" >&2; }

[[ "$(id -u)" -eq 0 ]] || die "needs root (debootstrap, chroot, and the trees hold root-only files)"
case "${CORPUS}" in server | kernel) ;; *) die "BENCH_CORPUS must be server or kernel" ;; esac
for tool in go gzip sha256sum find chroot ostree chattr skopeo docker-registry curl timeout; do
	command -v "${tool}" >/dev/null 2>&1 || die "${tool} missing"
done
[[ -x /usr/sbin/debootstrap ]] || command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (run: make deps)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (run: make deps)"
if [[ ! -x "${BOOTC}" ]]; then
	log "building ${BOOTC}"
	CGO_ENABLED=0 go build -tags "${GO_TAGS}" -o "${BOOTC}" ./cmd/bootc
fi
"${BOOTC}" compose image --help >/dev/null 2>&1 || die "${BOOTC} has no 'compose image' command"
"${BOOTC}" install to-filesystem --help >/dev/null 2>&1 || die "${BOOTC} has no 'install to-filesystem' command"

# Images and sysroots live on a real disk filesystem (not tmpfs), like the trees.
WORK="$(mktemp -d /var/tmp/bootc-bench-update.XXXXXX)"
cleanup() {
	registry_stop
	# Deployments are immutable (chattr +i), as libostree makes them.
	chattr -R -f -i "${WORK}"/sys-* 2>/dev/null || true
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
go build -o "${WORK}/bin/treediff" ./internal/testutil/cmd/treediff

log "preparing the Debian trees v1 and v2 of the ${CORPUS} corpus (built once, then cached; the first build takes several minutes)"
mapfile -t trees < <("${WORK}/bin/debian-kernel-trees" -corpus "${CORPUS}")
((${#trees[@]} == 2)) || die "debian-kernel-trees printed ${#trees[@]} lines, want 2"
V1="${trees[0]}"
V2="${trees[1]}"
[[ -d "${V1}" && -d "${V2}" ]] || die "debian-kernel-trees printed '${V1}' and '${V2}', not directories"

# --- What changed between v1 and v2 -----------------------------------------

# Packages: `dpkg-query -W` of both trees (written next to each rootfs).
pkgs_v1="$(dirname "${V1}")/packages.txt"
pkgs_v2="$(dirname "${V2}")/packages.txt"
pkg_changed="$(join -t $'\t' "${pkgs_v1}" "${pkgs_v2}" | awk -F'\t' '$2 != $3' | wc -l)"
pkg_added="$(join -t $'\t' -v 2 "${pkgs_v1}" "${pkgs_v2}" | wc -l)"
pkg_removed="$(join -t $'\t' -v 1 "${pkgs_v1}" "${pkgs_v2}" | wc -l)"
pkg_list="$(join -t $'\t' "${pkgs_v1}" "${pkgs_v2}" | awk -F'\t' '$2 != $3 { printf "%s%s %s -> %s", sep, $1, $2, $3; sep = "\n" }')"

# Files: sha256 of every regular file of both trees, by path; a v2 file is
# "changed" when v1 has no regular file at that path or its content differs.
log "comparing the trees file by file"
hash_tree() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum --zero) >"$2"; }
hash_tree "${V1}" "${WORK}/v1.sha256"
hash_tree "${V2}" "${WORK}/v2.sha256"
awk 'BEGIN { RS = "\0"; ORS = "\0" }
	NR == FNR { old[substr($0, 67)] = substr($0, 1, 64); next }
	{ p = substr($0, 67); if (!(p in old) || old[p] != substr($0, 1, 64)) print p }' \
	"${WORK}/v1.sha256" "${WORK}/v2.sha256" >"${WORK}/changed.list"
changed_files=0
changed_raw=0
ideal=0
while IFS= read -r -d '' f; do
	changed_files=$((changed_files + 1))
	changed_raw=$((changed_raw + $(stat -c %s -- "${V2}/${f}")))
	ideal=$((ideal + $(gzip -6 -c -- "${V2}/${f}" | wc -c)))
done <"${WORK}/changed.list"


# --- Compose the images ---------------------------------------------------------

# compose NAME ARGS...: runs bootc compose image, records wall seconds and the
# manifest digest (the last line of stdout) in ${WORK}/NAME.{time,digest}.
compose() {
	local name="$1"
	shift
	log "compose ${name}: ${BOOTC##*/} compose image $*"
	sync
	if ! /usr/bin/time -f '%e %M' -o "${WORK}/${name}.time" \
		"${BOOTC}" compose image -q "$@" >"${WORK}/${name}.out" 2>"${WORK}/${name}.err"; then
		cat "${WORK}/${name}.err" >&2
		die "compose ${name} failed"
	fi
	local digest
	digest="$(tail -n 1 "${WORK}/${name}.out")"
	[[ "${digest}" =~ ^sha256:[0-9a-f]{64}$ ]] || die "compose ${name} printed no manifest digest (got '${digest}')"
	echo "${digest}" >"${WORK}/${name}.digest"
}

O="${WORK}/oci"
mkdir -p "${O}"
GZ=(--compression gzip)
ZC=(--compression zstd:chunked)
# (a) chunked v1, then chunked v2 planned from v1's layers: gzip and zstd:chunked.
compose chunked-v1 "${GZ[@]}" --rootfs "${V1}" --output "oci:${O}/chunked:v1" --timestamp "${TS_V1}" --no-previous-build
compose chunked-v2 "${GZ[@]}" --rootfs "${V2}" --output "oci:${O}/chunked:v2" --timestamp "${TS_V2}" --previous-build "oci:${O}/chunked:v1"
compose zchunked-v1 "${ZC[@]}" --rootfs "${V1}" --output "oci:${O}/zchunked:v1" --timestamp "${TS_V1}" --no-previous-build
compose zchunked-v2 "${ZC[@]}" --rootfs "${V2}" --output "oci:${O}/zchunked:v2" --timestamp "${TS_V2}" --previous-build "oci:${O}/zchunked:v1"
# (b) chunked v2 without the previous build: the layer plan is computed afresh.
compose fresh-v2 "${GZ[@]}" --rootfs "${V2}" --output "oci:${O}/fresh:v2" --timestamp "${TS_V2}" --no-previous-build
# (c) single-layer images.
compose single-v1 "${GZ[@]}" --rootfs "${V1}" --output "oci:${O}/single:v1" --timestamp "${TS_V1}" --max-layers 1 --no-previous-build
compose single-v2 "${GZ[@]}" --rootfs "${V2}" --output "oci:${O}/single:v2" --timestamp "${TS_V2}" --max-layers 1 --no-previous-build
# Reproducibility: chunked v1 again, into a fresh layout, must be identical.
compose repro-v1 "${GZ[@]}" --rootfs "${V1}" --output "oci:${O}/repro:v1" --timestamp "${TS_V1}" --no-previous-build

layers() { "${WORK}/bin/oci-layers" "${O}/$1" "$2"; }
for image in chunked:v1 chunked:v2 zchunked:v1 zchunked:v2 fresh:v2 single:v1 single:v2; do
	layers "${image%%:*}" "${image#*:}" >"${WORK}/${image/:/-}.layers"
done

size() { awk '{ s += $2 } END { print s + 0 }' "${WORK}/$1.layers"; }
count() { wc -l <"${WORK}/$1.layers"; }
# download OLD NEW: bytes of NEW's layers whose digest OLD lacks (each
# distinct digest counted once).
download() {
	awk 'NR == FNR { have[$1] = 1; next } !($1 in have) && !($1 in seen) { seen[$1] = 1; s += $2 } END { print s + 0 }' \
		"${WORK}/$1.layers" "${WORK}/$2.layers"
}
new_layers() { awk 'NR == FNR { have[$1] = 1; next } !($1 in have) { n++ } END { print n + 0 }' "${WORK}/$1.layers" "${WORK}/$2.layers"; }

# --- On the wire: upgrades from a registry ----------------------------------------------

log "starting the registry"
registry_start "${WORK}/registry" || die "registry failed to start"
REPO_GZ="${REGISTRY}/bench/gzip"
REPO_ZC="${REGISTRY}/bench/zstd-chunked"
for t in v1 v2; do
	registry_push "oci:${O}/chunked:${t}" "${REPO_GZ}:${t}" "$(cat "${WORK}/chunked-${t}.digest")" || die "push failed"
	registry_push "oci:${O}/zchunked:${t}" "${REPO_ZC}:${t}" "$(cat "${WORK}/zchunked-${t}.digest")" || die "push failed"
done

# deployment SYSROOT: the path of the first (newest) deployment.
deployment() {
	local d
	d="$(ostree admin status --sysroot="$1" | grep -oE '\S+ [0-9a-f]{64}\.[0-9]+' | head -n 1)"
	[[ -n "${d}" ]] || die "no deployment in $1"
	echo "$1/ostree/deploy/${d%% *}/deploy/${d#* }"
}

# wire NAME REPO ENV...: installs REPO:v1 into a fresh sysroot ${WORK}/sys-NAME,
# points REPO:stable at v2 and runs `bootc upgrade`, both under `env ENV...`.
# Writes the blob GETs of the install and of the upgrade ("digest status bytes")
# to ${WORK}/NAME-install.gets and ${WORK}/NAME.gets, the upgrade's wall seconds
# to ${WORK}/NAME.time and the new deployment's path to ${WORK}/NAME.deployment.
wire() {
	local name="$1" repo="$2" sys="${WORK}/sys-$1" mark n
	shift 2
	log "wire ${name}: install ${repo}:v1, upgrade to v2 ($*)"
	mkdir -p "${sys}"
	registry_push "docker://${repo}:v1" "${repo}:stable" || die "retag failed"
	mark="$(registry_mark)"
	env "$@" "${BOOTC}" install to-filesystem --source-imgref "docker://${repo}:stable" "${sys}" \
		>"${WORK}/${name}-install.out" 2>&1 || die "${name}: install failed: $(tail -n 20 "${WORK}/${name}-install.out")"
	registry_since "${mark}" | registry_blob_gets >"${WORK}/${name}-install.gets"
	registry_push "docker://${repo}:v2" "${repo}:stable" || die "retag failed"
	sync
	mark="$(registry_mark)"
	env "$@" /usr/bin/time -f '%e' -o "${WORK}/${name}.time" "${BOOTC}" --sysroot "${sys}" upgrade \
		>"${WORK}/${name}.out" 2>&1 || die "${name}: upgrade failed: $(tail -n 20 "${WORK}/${name}.out")"
	registry_since "${mark}" | registry_blob_gets >"${WORK}/${name}.gets"
	n="$(ostree admin status --sysroot="${sys}" | grep -cE '^[* ] \S+ [0-9a-f]{64}\.[0-9]+')"
	((n == 2)) || die "${name}: ostree admin status lists ${n} deployments after the upgrade"
	ostree fsck --repo="${sys}/ostree/repo" >"${WORK}/${name}-fsck.out" 2>&1 || die "${name}: ostree fsck failed: $(tail -n 20 "${WORK}/${name}-fsck.out")"
	deployment "${sys}" >"${WORK}/${name}.deployment"
}
# whole_layers NAME IMAGE: fails unless the upgrade NAME fetched exactly the
# layers of IMAGE that v1 lacks, each once and whole (status 200).
whole_layers() {
	local v1="${2%-v2}-v1"
	awk 'NR == FNR { have[$1] = 1; next } !($1 in have) { print $1 }' "${WORK}/${v1}.layers" "${WORK}/$2.layers" | sort -u >"${WORK}/$1.want"
	awk 'NR == FNR { l[$1] = 1; next } ($1 in l) && $2 == 200 { print $1 }' "${WORK}/$2.layers" "${WORK}/$1.gets" | sort >"${WORK}/$1.got"
	cmp -s "${WORK}/$1.want" "${WORK}/$1.got" ||
		die "$1: the upgrade fetched $(wc -l <"${WORK}/$1.got") whole layers, want the $(wc -l <"${WORK}/$1.want") new layers once each"
}

# (1) whole gzip layers; (2) whole zstd:chunked layers; (3) partial pull of
# the zstd:chunked images (the default: whatever the host lacks).
wire gzip "${REPO_GZ}" -u BOOTC_PARTIAL_PULL
whole_layers gzip chunked-v2
wire whole "${REPO_ZC}" BOOTC_PARTIAL_PULL=0
whole_layers whole zchunked-v2
wire partial "${REPO_ZC}" -u BOOTC_PARTIAL_PULL
registry_stop

# The three upgrades must deploy the same tree (content, modes, owners, xattrs).
log "comparing the deployed v2 trees"
trees_same=yes
for name in whole partial; do
	if ! "${WORK}/bin/treediff" "$(cat "${WORK}/gzip.deployment")" "$(cat "${WORK}/${name}.deployment")" >"${WORK}/treediff-${name}.out" 2>&1; then
		trees_same=no
		log "deployed trees of gzip and ${name} differ:"
		head -n 20 "${WORK}/treediff-${name}.out" >&2
	fi
done

# --- Results ----------------------------------------------------------------------------

wire_bytes() { awk '{ s += $3 } END { print s + 0 }' "${WORK}/$1.gets"; }
wire_requests() { awk -v s="${2:-}" 's == "" || $2 == s { n++ } END { print n + 0 }' "${WORK}/$1.gets"; }
dl_a="$(download chunked-v1 chunked-v2)"
dl_az="$(download zchunked-v1 zchunked-v2)"
dl_b="$(download chunked-v1 fresh-v2)"
dl_c="$(download single-v1 single-v2)"
single_v2="$(size single-v2)"
w_gzip="$(wire_bytes gzip)"
w_whole="$(wire_bytes whole)"
w_partial="$(wire_bytes partial)"
repro=no
cmp -s "${WORK}/chunked-v1.digest" "${WORK}/repro-v1.digest" && repro=yes

mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }
secs() { awk '{ print $1 }' "${WORK}/$1.time"; }
row() { # label v1-image v2-image
	local label="$1" old="$2" new="$3" dl
	dl="$(download "${old}" "${new}")"
	printf '%-40s %6d %6d %12s %12s %12s %9s %9s\n' "${label}" "$(count "${new}")" \
		"$(new_layers "${old}" "${new}")" \
		"$(mib "$(size "${old}")")" "$(mib "$(size "${new}")")" "$(mib "${dl}")" \
		"$(ratio "${dl}" "${ideal}")" "$(pct "${dl}" "${single_v2}")"
}
wire_row() { # label name
	printf '%-54s %8d %6d %12s %9s %9s %12s\n' "$1" "$(wire_requests "$2")" "$(wire_requests "$2" 206)" \
		"$(mib "$(wire_bytes "$2")")" "$(ratio "$(wire_bytes "$2")" "${ideal}")" "$(secs "$2")" \
		"$(mib "$(wire_bytes "$2-install")")"
}

target_partial=no
awk -v a="${w_partial}" -v i="${ideal}" 'BEGIN { exit !(a <= 1.2 * i) }' && target_partial=yes
target_ideal=no
target_single=no
awk -v a="${dl_a}" -v i="${ideal}" 'BEGIN { exit !(a <= 2 * i) }' && target_ideal=yes
awk -v a="${dl_a}" -v s="${single_v2}" 'BEGIN { exit !(a <= 0.15 * s) }' && target_single=yes
include="$(awk -F= '$1 == "include" { print $2 }' "$(dirname "${V1}")/complete")"

{
	echo "# Update size: bytes a host holding v1 downloads for v2"
	echo "date:         $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "bootc:        $(git -C "${ROOT}" describe --always --dirty 2>/dev/null || echo unknown), binary sha256 ${BOOTC_SUM}"
	echo "images:       gzip and zstd:chunked (default levels), timestamps v1 ${TS_V1}, v2 ${TS_V2}"
	echo "corpus:       ${CORPUS}"
	echo "v1:           debootstrap --variant=minbase --include=${include} bookworm;" \
		"$(du -sh "${V1}" | awk '{ print $1 }'), $(find "${V1}" -type f | wc -l) regular files," \
		"kernel $(find "${V1}/boot" -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | head -n 1)"
	echo "v2:           v1 + apt-get upgrade from bookworm, bookworm-updates, bookworm-security;" \
		"$(du -sh "${V2}" | awk '{ print $1 }'), $(find "${V2}" -type f | wc -l) regular files"
	echo "packages:     ${pkg_changed} upgraded, ${pkg_added} added, ${pkg_removed} removed (of $(wc -l <"${pkgs_v2}"))"
	printf '%s\n' "${pkg_list}" | sed 's/^/                /'
	echo "files:        ${changed_files} regular files new or changed in v2, $(mib "${changed_raw}") uncompressed"
	echo
	echo "On the wire: bootc upgrade v1 -> v2 from docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $3 }') on 127.0.0.1"
	printf '%-54s %8s %6s %12s %9s %9s %12s\n' "" "requests" "206" "downloaded" "dl/ideal" "upgrade s" "install v1"
	wire_row "(1) whole layers, gzip" gzip
	wire_row "(2) whole layers, zstd:chunked (BOOTC_PARTIAL_PULL=0)" whole
	wire_row "(3) partial pull, zstd:chunked" partial
	printf '%-54s %8s %6s %12s %9s %9s %12s\n' "(4) file-level ideal (gzip -6 per file)" "-" "-" "$(mib "${ideal}")" "1.00" "-" "-"
	echo "downloaded = bytes of the blob GETs answered 200 or 206 (layers and config) in the registry's access"
	echo "log during the upgrade; requests = those GETs, 206 = of them, range answers. Each variant installs v1"
	echo "into a fresh sysroot (install v1 = its blob bytes), then upgrades; (1) and (2) fetched exactly the"
	echo "new layers, once each and whole (checked)."
	echo "bytes: (1) ${w_gzip}, (2) ${w_whole}, (3) ${w_partial}; ideal ${ideal}"
	echo "deployed v2 trees identical in (1), (2) and (3) (content, mode, owner, xattrs): ${trees_same}"
	echo
	echo "From the OCI layouts: the layers v2 has and v1 lacks"
	printf '%-40s %6s %6s %12s %12s %12s %9s %9s\n' "variant" "layers" "new" "v1 image" "v2 image" \
		"download" "dl/ideal" "dl/single"
	row "(a) chunked gzip, --previous-build v1" chunked-v1 chunked-v2
	row "(a) chunked zstd:chunked, --prev.-build" zchunked-v1 zchunked-v2
	row "(b) chunked gzip, --no-previous-build" chunked-v1 fresh-v2
	row "(c) single layer gzip (--max-layers 1)" single-v1 single-v2
	printf '%-40s %6s %6s %12s %12s %12s %9s %9s\n' "file-level ideal (gzip -6 per file)" "-" "-" "-" "-" \
		"$(mib "${ideal}")" "1.00" "$(pct "${ideal}" "${single_v2}")"
	echo "layers/new = layers of the v2 image / of those, layers v1 lacks."
	echo "download = sum of the compressed sizes of the v2 layers whose digest is not among the v1 layers;"
	echo "(b) is compared with the chunked v1 of (a). dl/single = download / size of the single-layer v2 image."
	echo "bytes: download (a) gzip ${dl_a}, zstd:chunked ${dl_az}, (b) ${dl_b}, (c) ${dl_c}; single-layer v2 ${single_v2}"
	echo "new gzip layers of (a), largest first (compressed bytes):"
	awk 'NR == FNR { have[$1] = 1; next } !($1 in have) { printf "                %s %10d %s %s\n", substr($1, 8, 12), $2, $3, $4 }' \
		"${WORK}/chunked-v1.layers" "${WORK}/chunked-v2.layers" | sort -k2,2nr
	echo
	echo "compose wall s: chunked v1 $(secs chunked-v1), v2 $(secs chunked-v2); zstd:chunked v1 $(secs zchunked-v1)," \
		"v2 $(secs zchunked-v2); fresh v2 $(secs fresh-v2); single v1 $(secs single-v1), v2 $(secs single-v2)"
	echo "manifests:    chunked v1      $(cat "${WORK}/chunked-v1.digest")"
	echo "              chunked v2      $(cat "${WORK}/chunked-v2.digest")"
	echo "              zstd:chunked v1 $(cat "${WORK}/zchunked-v1.digest")"
	echo "              zstd:chunked v2 $(cat "${WORK}/zchunked-v2.digest")"
	echo "              fresh v2        $(cat "${WORK}/fresh-v2.digest")"
	echo "              single v1       $(cat "${WORK}/single-v1.digest")"
	echo "              single v2       $(cat "${WORK}/single-v2.digest")"
	echo "reproducible: ${repro} (chunked v1 composed twice, same manifest digest)"
	echo
	echo "target (3) partial pull <= 1.2 x ideal:         ${target_partial} ($(ratio "${w_partial}" "${ideal}") x)"
	echo "target (a) download <= 2 x ideal:               ${target_ideal} ($(ratio "${dl_a}" "${ideal}") x)"
	echo "target (a) download <= 15% of single-layer v2:  ${target_single} ($(pct "${dl_a}" "${single_v2}"))"
} | tee "${RESULTS}"
log "results written to ${RESULTS#"${ROOT}"/}"

[[ "${repro}" == yes ]] || die "composing chunked v1 twice gave different manifests"
[[ "${trees_same}" == yes ]] || die "the upgrades deployed different trees (see above)"
