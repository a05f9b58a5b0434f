#!/usr/bin/env bash
# Runs every benchmark twice in one go, once with a baseline bootc binary and once with the
# current one, one benchmark after the other (baseline, then current), and prints their result
# files side by side. Each benchmark measures bootc against the reference tool (ostree, podman)
# in the same run, so compare the ratios to the reference: they hold when the machine's speed
# drifts between the two runs.
#
#   bench/before-after.sh BASELINE_BOOTC [CURRENT_BOOTC]      (CURRENT default bin/bootc)
#   e.g.: git worktree add /tmp/base v1 && (cd /tmp/base && make build) &&
#         bench/before-after.sh /tmp/base/bin/bootc
#
# BENCH_RUNS (and BENCH_UPGRADE_RUNS) are passed on to each benchmark; BENCH_ONLY="pull-deploy
# encapsulate" runs only those. Results go to bench/before-after/ (not committed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="${PWD}"
[[ $# -ge 1 ]] || { echo "usage: bench/before-after.sh BASELINE_BOOTC [CURRENT_BOOTC]" >&2; exit 2; }
abs() { case "$1" in /*) echo "$1" ;; *) echo "${ROOT}/$1" ;; esac; }
BASE="$(abs "$1")"
CUR="$(abs "${2:-bin/bootc}")"
for b in "${BASE}" "${CUR}"; do [[ -x "${b}" ]] || { echo "before-after: ${b} is not an executable" >&2; exit 2; }; done
OUT="${ROOT}/bench/before-after"
mkdir -p "${OUT}"

benches=("ostree-commit bare-user" "encapsulate" "update-size" "pull-deploy")
if [[ -n "${BENCH_ONLY:-}" ]]; then
	only=()
	for bench in "${benches[@]}"; do
		[[ " ${BENCH_ONLY} " == *" ${bench%% *} "* ]] && only+=("${bench}")
	done
	benches=("${only[@]}")
fi
for bench in "${benches[@]}"; do
	read -r name arg <<<"${bench}"
	for side in base current; do
		bin="${BASE}"
		[[ "${side}" == current ]] && bin="${CUR}"
		echo "==> ${name} (${side}: ${bin})"
		BOOTC="${bin}" BENCH_RESULTS="${OUT}/${name}-${side}.txt" "bench/${name}/run.sh" ${arg:+"${arg}"} >"${OUT}/${name}-${side}.log" 2>&1 ||
			{ echo "before-after: ${name} failed with ${bin}; see ${OUT}/${name}-${side}.log" >&2; exit 1; }
	done
done
for bench in "${benches[@]}"; do
	read -r name _ <<<"${bench}"
	for side in base current; do
		printf '\n===== %s, %s =====\n' "${name}" "${side}"
		cat "${OUT}/${name}-${side}.txt"
	done
done
