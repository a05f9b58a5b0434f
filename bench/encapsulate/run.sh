#!/usr/bin/env bash
# Benchmark: `bootc compose image` (root filesystem -> chunked, bootable OCI
# archive) vs the reference pipeline `ostree commit` + `tar | gzip -6` on the
# same Debian tree with a kernel. See README.md next to this script.
#
#   bench/encapsulate/run.sh
#   BENCH_RUNS=5 BOOTC=bin/bootc bench/encapsulate/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="${PWD}"
RUNS="${BENCH_RUNS:-3}"
BOOTC="${BOOTC:-bin/bootc}"
case "${BOOTC}" in /*) ;; *) BOOTC="${ROOT}/${BOOTC}" ;; esac
RESULTS="${BENCH_RESULTS:-${ROOT}/bench/encapsulate/results.txt}"
GO_TAGS="${GO_TAGS:-containers_image_openpgp}"
TIMESTAMP='2024-05-01T00:00:00Z'

die() {
	echo "bench: $*" >&2
	exit 1
}
log() { echo "bench: $*" >&2; }

[[ "$(id -u)" -eq 0 ]] || die "needs root (the tree holds root-only files; building it needs debootstrap and chroot)"
[[ "${RUNS}" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (run: make deps)"
for tool in go ostree tar gzip; do
	command -v "${tool}" >/dev/null 2>&1 || die "${tool} missing (run: make deps)"
done
[[ -x /usr/sbin/debootstrap ]] || command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (run: make deps)"
if [[ ! -x "${BOOTC}" ]]; then
	log "building ${BOOTC}"
	CGO_ENABLED=0 go build -tags "${GO_TAGS}" -o "${BOOTC}" ./cmd/bootc
fi
"${BOOTC}" compose image --help >/dev/null 2>&1 || die "${BOOTC} has no 'compose image' command"

# Outputs live on a real disk filesystem (not tmpfs), like the tree.
WORK="$(mktemp -d /var/tmp/bootc-bench-encap.XXXXXX)"
trap 'rm -rf "${WORK}"' EXIT
trap 'exit 130' INT TERM

# A private copy of the binary: every measurement uses the same build, even
# if bin/bootc is rebuilt while this runs.
cp "${BOOTC}" "${WORK}/bootc"
BOOTC_SUM="$(sha256sum "${WORK}/bootc" | cut -c1-12)"
BOOTC="${WORK}/bootc"

log "preparing the Debian tree with a kernel (built once, then cached; the first build takes several minutes)"
go build -o "${WORK}/debian-kernel-trees" ./internal/testutil/cmd/debian-kernel-trees
TREE="$("${WORK}/debian-kernel-trees" -only v1)"
[[ -d "${TREE}" ]] || die "debian-kernel-trees printed '${TREE}', not a directory"

# measure NAME CMD...: runs CMD under /usr/bin/time after a sync, appends
# "wall_s peak_rss_kib cpu_percent user_s sys_s" to ${WORK}/NAME.time.
measure() {
	local name="$1"
	shift
	# Flush writeback left by earlier runs so it is not charged to this one.
	sync
	if ! /usr/bin/time -f '%e %M %P %U %S' -o "${WORK}/${name}.time" "$@" >"${WORK}/${name}.out" 2>"${WORK}/${name}.err"; then
		cat "${WORK}/${name}.err" >&2
		die "${name} failed: $*"
	fi
	tail -n 1 "${WORK}/${name}.time" | tr -d '%'
}

# run_bootc NAME: one compose into a new archive; prints its time line.
run_bootc() {
	rm -f "${WORK}/image.ociarchive"
	measure "$1" "${BOOTC}" compose image --rootfs "${TREE}" --output "oci-archive:${WORK}/image.ociarchive" \
		--no-previous-build --timestamp "${TIMESTAMP}" -q
	local digest
	digest="$(tail -n 1 "${WORK}/$1.out")"
	[[ "${digest}" =~ ^sha256:[0-9a-f]{64}$ ]] || die "compose printed no manifest digest (got '${digest}')"
	[[ -s "${WORK}/image.ociarchive" ]] || die "compose wrote no archive"
}

# run_reference NAME: ostree commit into a fresh bare-user repo, then
# tar | gzip -6 of the tree; prints the commit's time line, then the tar's.
run_reference() {
	rm -rf "${WORK}/repo" "${WORK}/tree.tar.gz"
	ostree init --repo="${WORK}/repo" --mode=bare-user >/dev/null
	measure "$1-commit" ostree commit --repo="${WORK}/repo" -b bench --no-bindings \
		--timestamp="${TIMESTAMP}" --subject=bench --tree=dir="${TREE}"
	# shellcheck disable=SC2016 # expanded by the inner shell
	measure "$1-tar" bash -c 'set -o pipefail; tar -C "$1" -cf - . | gzip -6 >"$2"' tar "${TREE}" "${WORK}/tree.tar.gz"
	[[ -s "${WORK}/tree.tar.gz" ]] || die "tar | gzip wrote nothing"
}

log "warm-up (one run each, not recorded)"
run_bootc warmup-bootc >/dev/null
run_reference warmup-ref >/dev/null

: >"${WORK}/bootc.all"
: >"${WORK}/commit.all"
: >"${WORK}/tar.all"
: >"${WORK}/ref.all"
for ((i = 1; i <= RUNS; i++)); do
	# Alternate which goes first, so neither always follows the other.
	if ((i % 2)); then order=(bootc reference); else order=(reference bootc); fi
	for what in "${order[@]}"; do
		if [[ "${what}" == bootc ]]; then
			run_bootc "bootc-${i}" | tee -a "${WORK}/bootc.all" >"${WORK}/line"
			read -r wall rss cpu _ <"${WORK}/line"
			printf 'bench: run %d/%d %-9s %7.2f s %8d KiB %4d%% CPU\n' "${i}" "${RUNS}" bootc "${wall}" "${rss}" "${cpu}" >&2
		else
			run_reference "ref-${i}" >"${WORK}/lines"
			sed -n 1p "${WORK}/lines" >>"${WORK}/commit.all"
			sed -n 2p "${WORK}/lines" >>"${WORK}/tar.all"
			# The pipeline as a whole: walls and CPU seconds add up, peak RSS is the larger.
			awk 'NR == 1 { w = $1; r = $2; u = $4; s = $5 } NR == 2 { w += $1; if ($2 > r) r = $2; u += $4; s += $5 }
				END { printf "%.2f %d %d %.2f %.2f\n", w, r, (w > 0 ? 100 * (u + s) / w : 0), u, s }' \
				"${WORK}/lines" | tee -a "${WORK}/ref.all" >"${WORK}/line"
			read -r wall rss cpu _ <"${WORK}/line"
			printf 'bench: run %d/%d %-9s %7.2f s %8d KiB %4d%% CPU\n' "${i}" "${RUNS}" reference "${wall}" "${rss}" "${cpu}" >&2
		fi
	done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{ print $c }' "${WORK}/$1.all" | median; }
maxcol() { awk -v c="$2" 'BEGIN { m = 0 } $c > m { m = $c } END { print m }' "${WORK}/$1.all"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
bytes_mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
line() { # label name
	printf '%-26s %10.2f %14s %14s %8d%%\n' "$1" "$(col "$2" 1)" "$(mib "$(col "$2" 2)")" "$(mib "$(maxcol "$2" 2)")" "$(col "$2" 3)"
}

bootc_wall="$(col bootc 1)"
ref_wall="$(col ref 1)"
bootc_peak="$(maxcol bootc 2)"
time_ratio="$(awk -v a="${bootc_wall}" -v b="${ref_wall}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
target_time=no
target_rss=no
awk -v r="${time_ratio}" 'BEGIN { exit !(r <= 1.0) }' && target_time=yes
((bootc_peak < 300 * 1024)) && target_rss=yes

{
	echo "# bootc compose image vs ostree commit + tar | gzip -6"
	echo "date:       $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "nproc:      $(nproc)"
	echo "ostree:     $(ostree --version | awk -F"'" '/Version:/ { print $2; exit }')"
	echo "go:         $(go version | awk '{ print $3 }')"
	echo "bootc:      $(git -C "${ROOT}" describe --always --dirty 2>/dev/null || echo unknown), binary sha256 ${BOOTC_SUM}"
	echo "tree:       Debian bookworm minbase + linux-image-amd64 (v1 of bench/update-size)," \
		"$(du -sh "${TREE}" | awk '{ print $1 }'), $(find "${TREE}" -type f | wc -l) regular files, $(find "${TREE}" | wc -l) entries"
	echo "runs:       ${RUNS} per side after 1 warm-up each, alternating; fresh output per run"
	echo "bootc:      compose image --rootfs TREE --output oci-archive:X --no-previous-build --timestamp ${TIMESTAMP} -q"
	echo "reference:  ostree commit (fresh bare-user repo) --tree=dir=TREE, then tar -C TREE -cf - . | gzip -6 > X"
	echo "outputs:    oci-archive $(bytes_mib "$(stat -c %s "${WORK}/image.ociarchive")")," \
		"tar.gz $(bytes_mib "$(stat -c %s "${WORK}/tree.tar.gz")")"
	echo
	printf '%-26s %10s %14s %14s %9s\n' "" "median s" "median RSS" "peak RSS" "CPU"
	line "bootc compose image" bootc
	line "reference (both steps)" ref
	line "  ostree commit" commit
	line "  tar | gzip -6" tar
	echo
	echo "time ratio bootc/reference: ${time_ratio} (target <= 1.0: ${target_time})"
	echo "bootc peak RSS: $(mib "${bootc_peak}") (target < 300 MiB: ${target_rss})"
	echo "(the reference's RSS is the larger of its two steps; tar | gzip is measured as its shell, whose"
	echo " children's peak is the larger of tar's and gzip's; CPU % = (user + sys) / wall, 200% = both cores)"
} | tee "${RESULTS}"
log "results written to ${RESULTS#"${ROOT}"/}"
