#!/usr/bin/env bash
# Benchmark: `bootc ostree commit` vs the real `ostree commit` of a Debian
# bookworm minbase tree, side by side. See README.md next to this script.
#
#   bench/ostree-commit/run.sh [bare-user|bare|archive]     (default bare-user)
#   BENCH_RUNS=5 BOOTC=bin/bootc bench/ostree-commit/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="${PWD}"
MODE="${1:-bare-user}"
RUNS="${BENCH_RUNS:-5}"
BOOTC="${BOOTC:-bin/bootc}"
case "${BOOTC}" in /*) ;; *) BOOTC="${ROOT}/${BOOTC}" ;; esac
RESULTS="${BENCH_RESULTS:-${ROOT}/bench/ostree-commit/results-${MODE}.txt}"
TIMESTAMP='2021-01-01 00:00:00 UTC'
GO_TAGS="${GO_TAGS:-containers_image_openpgp}"

die() {
	echo "bench: $*" >&2
	exit 1
}

case "${MODE}" in
bare-user | bare | archive) ;;
*) die "unknown mode '${MODE}' (want bare-user, bare or archive)" ;;
esac
[[ "${RUNS}" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (run: make deps)"
command -v ostree >/dev/null 2>&1 || die "ostree missing (run: make deps)"
if [[ ! -x "${BOOTC}" ]]; then
	echo "bench: building ${BOOTC}"
	CGO_ENABLED=0 go build -tags "${GO_TAGS}" -o "${BOOTC}" ./cmd/bootc
fi

echo "bench: preparing the Debian tree (built once, then cached)"
TREE="$(go run ./internal/testutil/cmd/debian-tree)"
[[ -d "${TREE}" ]] || die "debian-tree printed '${TREE}', not a directory"

# Repositories live on a real disk filesystem (not tmpfs), like the tree.
WORK="$(mktemp -d /var/tmp/bootc-bench.XXXXXX)"
trap 'rm -rf "${WORK}"' EXIT

# commit TOOL NAME: commits TREE into a fresh repo, records
# "wall_seconds peak_rss_kib checksum" in ${WORK}/NAME.result.
commit() {
	local tool="$1" name="$2"
	local repo="${WORK}/repo-${name}"
	rm -rf "${repo}"
	local -a cmd
	case "${tool}" in
	ours)
		"${BOOTC}" ostree init --repo "${repo}" --mode "${MODE}" >/dev/null
		cmd=("${BOOTC}" ostree commit --repo "${repo}" -b bench --no-bindings
			--timestamp "${TIMESTAMP}" --subject bench "${TREE}")
		;;
	ostree)
		ostree init --repo="${repo}" --mode="${MODE}" >/dev/null
		cmd=(ostree commit --repo="${repo}" -b bench --no-bindings
			--timestamp="${TIMESTAMP}" --subject=bench "${TREE}")
		;;
	esac
	# Flush writeback left by earlier runs so it is not charged to this one
	# (this writes dirty pages out; it drops nothing from the page cache).
	sync
	if ! /usr/bin/time -f '%e %M' -o "${WORK}/${name}.time" "${cmd[@]}" >"${WORK}/${name}.out" 2>"${WORK}/${name}.err"; then
		cat "${WORK}/${name}.err" >&2
		die "${tool} commit failed: ${cmd[*]}"
	fi
	local checksum
	checksum="$(tail -n 1 "${WORK}/${name}.out")"
	[[ "${checksum}" =~ ^[0-9a-f]{64}$ ]] || die "${tool} commit printed no checksum (got '${checksum}')"
	printf '%s %s\n' "$(tail -n 1 "${WORK}/${name}.time")" "${checksum}" >"${WORK}/${name}.result"
	rm -rf "${repo}"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "bench: warm-up (one commit with each tool, not recorded)"
commit ours warmup-ours
commit ostree warmup-ostree

: >"${WORK}/ours.all"
: >"${WORK}/ostree.all"
for ((i = 1; i <= RUNS; i++)); do
	# Alternate which tool goes first, so neither always follows the other.
	if ((i % 2)); then order=(ours ostree); else order=(ostree ours); fi
	for tool in "${order[@]}"; do
		commit "${tool}" "${tool}-${i}"
		cat "${WORK}/${tool}-${i}.result" >>"${WORK}/${tool}.all"
		read -r wall rss _ <"${WORK}/${tool}-${i}.result"
		printf 'bench: run %d/%d %-6s %6.2f s %8d KiB\n' "${i}" "${RUNS}" "${tool}" "${wall}" "${rss}"
	done
done

ours_wall="$(awk '{ print $1 }' "${WORK}/ours.all" | median)"
ours_rss="$(awk '{ print $2 }' "${WORK}/ours.all" | median)"
ostree_wall="$(awk '{ print $1 }' "${WORK}/ostree.all" | median)"
ostree_rss="$(awk '{ print $2 }' "${WORK}/ostree.all" | median)"
ours_peak="$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "${WORK}/ours.all")"
ours_sums="$(awk '{ print $3 }' "${WORK}/ours.all" "${WORK}/warmup-ours.result" | sort -u)"
ostree_sums="$(awk '{ print $3 }' "${WORK}/ostree.all" "${WORK}/warmup-ostree.result" | sort -u)"

same=yes
[[ "${ours_sums}" == "${ostree_sums}" && "$(printf '%s\n' "${ours_sums}" | wc -l)" -eq 1 ]] || same=no

{
	echo "# bootc ostree commit vs ostree commit (mode ${MODE})"
	echo "date:           $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "nproc:          $(nproc)"
	echo "ostree:         $(ostree --version | awk -F"'" '/Version:/ { print $2; exit }')"
	echo "go:             $(go version | awk '{ print $3 }')"
	echo "bootc:          $(git -C "${ROOT}" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "tree:           Debian bookworm minbase, $(du -sh "${TREE}" | awk '{ print $1 }'), $(find "${TREE}" -type f | wc -l) regular files, $(find "${TREE}" | wc -l) entries"
	echo "runs:           ${RUNS} per tool after 1 warm-up each, alternating, fresh repo per run"
	echo "flags:          -b bench --no-bindings --timestamp='${TIMESTAMP}' --subject bench"
	echo
	printf '%-8s %14s %16s\n' "tool" "median wall s" "median peak RSS"
	printf '%-8s %14.2f %12d KiB\n' "bootc" "${ours_wall}" "${ours_rss}"
	printf '%-8s %14.2f %12d KiB\n' "ostree" "${ostree_wall}" "${ostree_rss}"
	awk -v a="${ours_wall}" -v b="${ostree_wall}" -v c="${ours_rss}" -v d="${ostree_rss}" \
		'BEGIN { printf "%-8s %14.2f %16.2f\n", "ratio", (b > 0 ? a / b : 0), (d > 0 ? c / d : 0) }'
	echo
	echo "bootc peak RSS (max over runs): ${ours_peak} KiB (target < 262144 KiB)"
	echo "commit checksums:"
	echo "  bootc:  ${ours_sums//$'\n'/ }"
	echo "  ostree: ${ostree_sums//$'\n'/ }"
	echo "  identical: ${same}"
} | tee "${RESULTS}"
echo "bench: results written to ${RESULTS#"${ROOT}"/}"

[[ "${same}" == yes ]] || die "commit checksums differ"
