#!/usr/bin/env bash
# Runs the VM test (tests/vm): builds the bootable Debian image, installs it to a disk image
# with `bootc install to-disk`, boots it under qemu (TCG) and drives switch, rollback and a
# broken update inside it. Ends with the line "vm-test: N/N steps passed".
set -uo pipefail
GO=${GO:-go}
GO_TAGS=${GO_TAGS:-containers_image_openpgp}
log=$(mktemp /tmp/vm-test.XXXXXX.log)
cd "$(dirname "$0")/.."
CGO_ENABLED=0 "${GO}" test -tags "${GO_TAGS} vmtest" -count=1 -timeout 40m -v -run '^TestVM$' ./tests/vm 2>&1 | tee "${log}"
status=${PIPESTATUS[0]}
summary=$(grep -E '^vm-test: [0-9]+/[0-9]+ steps passed' "${log}" | tail -n 1)
echo "vm-test: full log in ${log}"
echo "${summary:-vm-test: 0/0 steps passed (the test did not start)}"
exit "${status}"
