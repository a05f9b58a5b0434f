#!/bin/bash
# Adds bootc to a root filesystem made by build.sh: the binary as /usr/bin/bootc (and as
# /usr/libexec/libostree/ext/ostree-container, the ostree CLI's container extension) and the units
# of dist/systemd (staged-deployment finalization, boot counting with health checks and
# fallback, automatic updates by the timer or, on hosts with /etc/bootc/update.d
# configuration, by bootc-update-agent.service, first-boot provisioning from an Ignition config),
# enabled as an image ships them, and the health checks of dist/health.d. libostree's own finalization
# unit is masked: bootc finalizes the deployments it stages.
#
# Usage: add-bootc.sh ROOT BOOTC    (as root; ROOT is changed in place)
set -euo pipefail

die() { echo "add-bootc.sh: $*" >&2; exit 1; }

[[ $# == 2 ]] || die "usage: add-bootc.sh ROOT BOOTC"
root=$1 bin=$2
units=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../dist/systemd
[[ -x $root/usr/bin/systemctl ]] || die "$root is not a systemd root filesystem"
[[ -d $units ]] || die "no unit directory $units"

install -D -m 0755 "$bin" "$root/usr/bin/bootc"
# bootc is also ostree-ext's `ostree container` (Podman Machine runs `ostree container image
# metadata`): the ostree CLI runs `ostree container ...` as PKGLIBEXECDIR/ext/ostree-container,
# /usr/libexec/libostree/ext in Debian's ostree 2022.7 (then ostree-container on $PATH).
install -d -m 0755 "$root/usr/libexec/libostree/ext"
ln -sfn ../../../bin/bootc "$root/usr/libexec/libostree/ext/ostree-container"
# The mount point of the EFI system partition `bootc install to-disk` makes: systemd's
# gpt-auto generator automounts the ESP at /efi, and cannot make the directory in an ostree
# deployment's immutable root itself (the automount then fails on every boot).
mkdir -p -m 0755 "$root/efi"
# As in bootc images, /root and /home live in /var, the machine's own directory that every
# deployment shares (homes and root's files survive updates; Ignition writes users there):
# /root -> var/roothome (the image's /root moves there), /home -> var/home, both made at boot
# by systemd-tmpfiles when /var is new.
if [[ -d $root/root && ! -L $root/root ]]; then
	install -d -m 0700 "$root/var/roothome"
	cp -a "$root/root/." "$root/var/roothome/"
	rm -rf "$root/root"
	ln -s var/roothome "$root/root"
fi
if [[ -d $root/home && ! -L $root/home ]]; then
	rmdir "$root/home" || die "$root/home is not empty: move its content to $root/var/home"
	ln -s var/home "$root/home"
fi
install -D -m 0644 /dev/stdin "$root/usr/lib/tmpfiles.d/bootc-var.conf" <<'EOF'
d /var/home 0755 root root -
d /var/roothome 0700 root root -
EOF
enable=()
for u in "$units"/*.service "$units"/*.timer; do
	[[ -e $u ]] || continue
	name=$(basename "$u")
	install -D -m 0644 "$u" "$root/usr/lib/systemd/system/$name"
	grep -q '^\[Install\]' "$u" && enable+=("$name")
done
# The health checks bootc ships (dist/health.d: e.g. the first-boot provisioning's).
for c in "$units"/../health.d/required.d/* "$units"/../health.d/wanted.d/*; do
	[[ -e $c ]] || continue
	install -D -m 0755 "$c" "$root/usr/lib/bootc/health.d/$(basename "$(dirname "$c")")/$(basename "$c")"
done
if ((${#enable[@]} > 0)); then
	systemctl --root="$root" enable "${enable[@]}" >/dev/null 2>&1 || die "systemctl --root enable ${enable[*]} failed"
fi
systemctl --root="$root" mask ostree-finalize-staged.path ostree-finalize-staged.service >/dev/null 2>&1 ||
	die "masking ostree-finalize-staged failed"
