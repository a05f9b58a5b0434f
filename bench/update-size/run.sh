#!/usr/bin/env bash
# Benchmark: how many bytes a host holding image v1 downloads to update to v2,
# for chunked images built with and without the previous build, for
# single-layer images, and for an ideal file-level update. See README.md next
# to this script.
#
#   bench/update-size/run.sh
#   BOOTC=bin/bootc BENCH_COMPRESSION=gzip BENCH_KEEP=1 bench/update-size/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="${PWD}"
BOOTC="${BOOTC:-bin/bootc}"
case "${BOOTC}" in /*) ;; *) BOOTC="${ROOT}/${BOOTC}" ;; esac
COMPRESSION="${BENCH_COMPRESSION:-gzip}"
RESULTS="${BENCH_RESULTS:-${ROOT}/bench/update-size/results.txt}"
[[ -n "${BENCH_RESULTS:-}" || "${COMPRESSION}" == gzip ]] || RESULTS="${ROOT}/bench/update-size/results-${COMPRESSION}.txt"
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
case "${COMPRESSION}" in gzip | zstd) ;; *) die "BENCH_COMPRESSION must be gzip or zstd" ;; esac
for tool in go gzip sha256sum find chroot; do
	command -v "${tool}" >/dev/null 2>&1 || die "${tool} missing"
done
[[ -x /usr/sbin/debootstrap ]] || command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (run: make deps)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (run: make deps)"
if [[ ! -x "${BOOTC}" ]]; then
	log "building ${BOOTC}"
	CGO_ENABLED=0 go build -tags "${GO_TAGS}" -o "${BOOTC}" ./cmd/bootc
fi
"${BOOTC}" compose image --help >/dev/null 2>&1 || die "${BOOTC} has no 'compose image' command"

# Images live on a real disk filesystem (not tmpfs), like the trees.
WORK="$(mktemp -d /var/tmp/bootc-bench-update.XXXXXX)"
cleanup() {
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
		"${BOOTC}" compose image --compression "${COMPRESSION}" -q "$@" >"${WORK}/${name}.out" 2>"${WORK}/${name}.err"; then
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
# (a) chunked v1, then chunked v2 planned from v1's layers.
compose chunked-v1 --rootfs "${V1}" --output "oci:${O}/chunked:v1" --timestamp "${TS_V1}" --no-previous-build
compose chunked-v2 --rootfs "${V2}" --output "oci:${O}/chunked:v2" --timestamp "${TS_V2}" --previous-build "oci:${O}/chunked:v1"
# (b) chunked v2 without the previous build: the layer plan is computed afresh.
compose fresh-v2 --rootfs "${V2}" --output "oci:${O}/fresh:v2" --timestamp "${TS_V2}" --no-previous-build
# (c) single-layer images.
compose single-v1 --rootfs "${V1}" --output "oci:${O}/single:v1" --timestamp "${TS_V1}" --max-layers 1 --no-previous-build
compose single-v2 --rootfs "${V2}" --output "oci:${O}/single:v2" --timestamp "${TS_V2}" --max-layers 1 --no-previous-build
# Reproducibility: chunked v1 again, into a fresh layout, must be identical.
compose repro-v1 --rootfs "${V1}" --output "oci:${O}/repro:v1" --timestamp "${TS_V1}" --no-previous-build

layers() { "${WORK}/bin/oci-layers" "${O}/$1" "$2"; }
layers chunked v1 >"${WORK}/chunked-v1.layers"
layers chunked v2 >"${WORK}/chunked-v2.layers"
layers fresh v2 >"${WORK}/fresh-v2.layers"
layers single v1 >"${WORK}/single-v1.layers"
layers single v2 >"${WORK}/single-v2.layers"

size() { awk '{ s += $2 } END { print s + 0 }' "${WORK}/$1.layers"; }
count() { wc -l <"${WORK}/$1.layers"; }
# download OLD NEW: bytes of NEW's layers whose digest OLD lacks (each
# distinct digest counted once).
download() {
	awk 'NR == FNR { have[$1] = 1; next } !($1 in have) && !($1 in seen) { seen[$1] = 1; s += $2 } END { print s + 0 }' \
		"${WORK}/$1.layers" "${WORK}/$2.layers"
}
new_layers() { awk 'NR == FNR { have[$1] = 1; next } !($1 in have) { n++ } END { print n + 0 }' "${WORK}/$1.layers" "${WORK}/$2.layers"; }

dl_a="$(download chunked-v1 chunked-v2)"
dl_b="$(download chunked-v1 fresh-v2)"
dl_c="$(download single-v1 single-v2)"
single_v2="$(size single-v2)"
repro=no
cmp -s "${WORK}/chunked-v1.digest" "${WORK}/repro-v1.digest" && repro=yes

mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }
secs() { awk '{ print $1 }' "${WORK}/$1.time"; }
row() { # label v1-image v2-image
	local label="$1" old="$2" new="$3" dl
	dl="$(download "${old}" "${new}")"
	printf '%-36s %6d %6d %12s %12s %12s %9s %9s\n' "${label}" "$(count "${new}")" \
		"$(new_layers "${old}" "${new}")" \
		"$(mib "$(size "${old}")")" "$(mib "$(size "${new}")")" "$(mib "${dl}")" \
		"$(ratio "${dl}" "${ideal}")" "$(pct "${dl}" "${single_v2}")"
}

target_ideal=no
target_single=no
awk -v a="${dl_a}" -v i="${ideal}" 'BEGIN { exit !(a <= 2 * i) }' && target_ideal=yes
awk -v a="${dl_a}" -v s="${single_v2}" 'BEGIN { exit !(a <= 0.15 * s) }' && target_single=yes

{
	echo "# Update size: bytes a host holding v1 downloads for v2"
	echo "date:         $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "bootc:        $(git -C "${ROOT}" describe --always --dirty 2>/dev/null || echo unknown), binary sha256 ${BOOTC_SUM}"
	echo "compression:  ${COMPRESSION} (default level), timestamps v1 ${TS_V1}, v2 ${TS_V2}"
	echo "v1:           debootstrap --variant=minbase --include=linux-image-amd64 bookworm;" \
		"$(du -sh "${V1}" | awk '{ print $1 }'), $(find "${V1}" -type f | wc -l) regular files," \
		"kernel $(find "${V1}/boot" -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | head -n 1)"
	echo "v2:           v1 + apt-get upgrade from bookworm, bookworm-updates, bookworm-security;" \
		"$(du -sh "${V2}" | awk '{ print $1 }'), $(find "${V2}" -type f | wc -l) regular files"
	echo "packages:     ${pkg_changed} upgraded, ${pkg_added} added, ${pkg_removed} removed (of $(wc -l <"${pkgs_v2}"))"
	printf '%s\n' "${pkg_list}" | sed 's/^/                /'
	echo "files:        ${changed_files} regular files new or changed in v2, $(mib "${changed_raw}") uncompressed"
	echo
	printf '%-36s %6s %6s %12s %12s %12s %9s %9s\n' "variant" "layers" "new" "v1 image" "v2 image" \
		"download" "dl/ideal" "dl/single"
	row "(a) chunked, --previous-build v1" chunked-v1 chunked-v2
	row "(b) chunked, --no-previous-build" chunked-v1 fresh-v2
	row "(c) single layer (--max-layers 1)" single-v1 single-v2
	printf '%-36s %6s %6s %12s %12s %12s %9s %9s\n' "file-level ideal (gzip -6 per file)" "-" "-" "-" "-" \
		"$(mib "${ideal}")" "1.00" "$(pct "${ideal}" "${single_v2}")"
	echo
	echo "layers/new = layers of the v2 image / of those, layers v1 lacks."
	echo "download = sum of the compressed sizes of the v2 layers whose digest is not among the v1 layers;"
	echo "(b) is compared with the chunked v1 of (a). dl/single = download / size of the single-layer v2 image."
	echo "bytes: download (a) ${dl_a}, (b) ${dl_b}, (c) ${dl_c}; ideal ${ideal}; single-layer v2 ${single_v2}"
	echo
	echo "compose wall s: chunked v1 $(secs chunked-v1), chunked v2 $(secs chunked-v2), fresh v2 $(secs fresh-v2)," \
		"single v1 $(secs single-v1), single v2 $(secs single-v2)"
	echo "manifests:    chunked v1 $(cat "${WORK}/chunked-v1.digest")"
	echo "              chunked v2 $(cat "${WORK}/chunked-v2.digest")"
	echo "              fresh v2   $(cat "${WORK}/fresh-v2.digest")"
	echo "              single v1  $(cat "${WORK}/single-v1.digest")"
	echo "              single v2  $(cat "${WORK}/single-v2.digest")"
	echo "reproducible: ${repro} (chunked v1 composed twice, same manifest digest)"
	echo
	echo "target (a) download <= 2 x ideal:               ${target_ideal} ($(ratio "${dl_a}" "${ideal}") x)"
	echo "target (a) download <= 15% of single-layer v2:  ${target_single} ($(pct "${dl_a}" "${single_v2}"))"
} | tee "${RESULTS}"
log "results written to ${RESULTS#"${ROOT}"/}"

[[ "${repro}" == yes ]] || die "composing chunked v1 twice gave different manifests"
