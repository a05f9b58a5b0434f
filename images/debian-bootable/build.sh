#!/bin/bash
# Builds a bootable Debian bookworm root filesystem for `bootc compose image`:
# systemd, the Debian kernel, and a dracut initramfs that mounts root=UUID=...
# and runs ostree-prepare-root for the ostree= kernel argument.
#
# Usage: build.sh OUTDIR      (as root; OUTDIR must not exist)
#
# The mirror is $BOOTC_DEBIAN_MIRROR, else the URIs: value of the deb822 entry
# in /etc/apt/sources.list.d/debian.sources whose Suites: lists "bookworm",
# else the matching "deb" line of /etc/apt/sources.list.
set -euo pipefail

SUITE=bookworm
# Installed after debootstrap, in the chroot, with --no-install-recommends.
# The kernel is installed in a second step, once dracut is configured.
# GRUB's -bin packages put /usr/lib/grub/{i386-pc,x86_64-efi}, from which
# `bootc install to-disk` makes the disk's bootloader; never grub-pc or
# grub-efi-amd64, whose postinst installs GRUB onto the machine running it.
PACKAGES=(systemd-sysv udev dbus kmod dracut ostree ostree-boot util-linux e2fsprogs iproute2
	grub-pc-bin grub-efi-amd64-bin grub-common)
KERNEL_PACKAGE=linux-image-amd64
# Kernel module directories (under lib/modules/KVER/kernel) of hardware a VM
# does not have. virtio, block, scsi, nvme, filesystems, net core, usb, hid stay.
PRUNE_MODULES=(
	sound drivers/gpu drivers/media drivers/net/wireless net/wireless net/mac80211
	drivers/infiniband net/rds net/sunrpc/xprtrdma drivers/bluetooth net/bluetooth
	drivers/staging drivers/isdn drivers/iio drivers/comedi drivers/misc/mei
	drivers/net/can net/can drivers/nfc net/nfc drivers/atm net/atm
	drivers/input/touchscreen drivers/input/joystick drivers/input/tablet
	drivers/video/fbdev drivers/thunderbolt drivers/mtd drivers/w1
)
RETRY_DELAY=${RETRY_DELAY:-10}

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

debian_mirror() {
	if [[ -n ${BOOTC_DEBIAN_MIRROR:-} ]]; then
		echo "$BOOTC_DEBIAN_MIRROR"
		return
	fi
	local m=""
	if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
		# deb822 stanzas: first URIs of an enabled "deb" stanza listing the suite exactly.
		m=$(awk -v suite="$SUITE" '
			function flush() {
				if (!found && enabled != "no" && (types == "" || types ~ /(^| )deb( |$)/) &&
				    (" " suites " ") ~ (" " suite " ") && uris != "") {
					split(uris, u, " "); print u[1]; found = 1
				}
				types = suites = uris = enabled = ""; last = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^#/ { next }
			/^[ \t]/ { if (last == "suites") suites = suites " " $0; if (last == "uris") uris = uris " " $0; next }
			{
				key = tolower(substr($0, 1, index($0, ":") - 1)); val = substr($0, index($0, ":") + 1)
				gsub(/^[ \t]+|[ \t]+$/, "", val); gsub(/[ \t]+/, " ", val); last = key
				if (key == "types") types = val; else if (key == "suites") suites = val
				else if (key == "uris") uris = val; else if (key == "enabled") enabled = tolower(val)
			}
			END { flush() }' /etc/apt/sources.list.d/debian.sources)
	fi
	if [[ -z $m && -r /etc/apt/sources.list ]]; then
		m=$(sed 's/#.*//' /etc/apt/sources.list | awk -v suite="$SUITE" '
			$1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			              if ($(i+1) == suite) { print $i; exit } }')
	fi
	[[ -n $m ]] || die "no Debian mirror for $SUITE (set BOOTC_DEBIAN_MIRROR)"
	echo "$m"
}

# retry CMD...: runs CMD, and once more after a pause if it fails (transient
# fetch errors from the mirror).
retry() {
	"$@" && return 0
	log "failed, retrying once in ${RETRY_DELAY}s: $*"
	sleep "$RETRY_DELAY"
	"$@"
}

# in_chroot [VAR=VALUE...] CMD...: runs CMD in the tree with a clean environment.
in_chroot() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

apt_install() { in_chroot "${APT_ENV[@]}" apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "$@"; }

# Stage 2 runs in a private mount namespace (unshare --mount): the /proc, /sys
# and /dev mounts of the chroot vanish with it, whatever happens.
stage2() {
	set -euo pipefail
	mount --make-rprivate /
	mount -t proc proc "$ROOT/proc"
	mount -t sysfs sysfs "$ROOT/sys"
	mount --rbind /dev "$ROOT/dev"
	mount -t tmpfs tmpfs "$ROOT/run"

	# No daemons start inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
	chmod 0755 "$ROOT/usr/sbin/policy-rc.d"

	retry in_chroot apt-get update -o Dpkg::Use-Pty=0
	APT_ENV=()
	retry apt_install "${PACKAGES[@]}"
	# INITRD=No skips dracut's kernel postinst hook: the initramfs is built
	# once, below, after the module pruning.
	APT_ENV=(INITRD=No)
	retry apt_install "$KERNEL_PACKAGE"

	local kver
	kver=$(basename "$(ls -d "$ROOT"/lib/modules/*/ | head -n1)")
	[[ $(ls -d "$ROOT"/lib/modules/*/ | wc -l) == 1 ]] || die "expected one kernel in lib/modules"
	log "pruning kernel modules of $kver"
	for d in "${PRUNE_MODULES[@]}"; do
		rm -rf "$ROOT/lib/modules/$kver/kernel/$d"
	done
	in_chroot depmod -a "$kver"
	log "building the initramfs"
	in_chroot dracut --force --kver "$kver" "/boot/initrd.img-$kver"
	in_chroot lsinitrd "/boot/initrd.img-$kver" >"$ROOT/tmp/lsinitrd.txt"
	for f in usr/lib/ostree/ostree-prepare-root usr/lib/systemd/system/ostree-prepare-root.service \
		virtio_blk.ko ext4.ko; do
		grep -q "$f" "$ROOT/tmp/lsinitrd.txt" || die "initramfs lacks $f"
	done
	for f in i386-pc/boot.img i386-pc/kernel.img x86_64-efi/kernel.img; do
		[[ -f $ROOT/usr/lib/grub/$f ]] || die "the tree lacks /usr/lib/grub/$f"
	done

	rm -f "$ROOT/usr/sbin/policy-rc.d"
	in_chroot apt-get clean
}

main() {
	[[ $# == 1 ]] || die "usage: build.sh OUTDIR"
	[[ $(id -u) == 0 ]] || die "must run as root"
	[[ ! -e $1 && ! -L $1 ]] || die "$1 already exists"
	ROOT=$(realpath -m -- "$1")
	local start=$SECONDS mirror
	mirror=$(debian_mirror)
	export ROOT

	log "debootstrap $SUITE into $ROOT"
	first_debootstrap() { debootstrap --variant=minbase "$SUITE" "$ROOT" "$mirror"; }
	if ! first_debootstrap; then
		log "debootstrap failed, retrying once in ${RETRY_DELAY}s"
		sleep "$RETRY_DELAY"
		# A failed debootstrap can leave its own mounts behind.
		grep -o " $ROOT[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l || true
		rm -rf "$ROOT"
		first_debootstrap
	fi

	# initramfs configuration, before the kernel's postinst hook runs dracut.
	mkdir -p "$ROOT/etc/dracut.conf.d"
	cat >"$ROOT/etc/dracut.conf.d/90-bootc.conf" <<'CONF'
# A generic initramfs (not tied to the build host) that can mount
# root=UUID=... on virtio, SCSI, NVMe or SATA disks, ext4 or xfs, and then
# runs ostree-prepare-root for the ostree= kernel argument.
hostonly="no"
add_dracutmodules+=" systemd ostree "
omit_dracutmodules+=" plymouth "
add_drivers+=" virtio_blk virtio_scsi virtio_pci virtio_console sd_mod nvme ahci ext4 xfs "
filesystems+=" ext4 xfs "
CONF

	# The new bash sources this script for its functions and settings.
	unshare --mount --propagation private -- "$BASH" -c \
		'source "$0" --functions-only && stage2' "$(readlink -f "${BASH_SOURCE[0]}")"

	log "cleaning up the tree"
	find "$ROOT/dev" -mindepth 1 -delete
	find "$ROOT/run" "$ROOT/tmp" -mindepth 1 -delete
	: >"$ROOT/etc/machine-id"
	# debootstrap copies these from the build host; the image gets its own.
	echo debian >"$ROOT/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
	rm -f "$ROOT/etc/resolv.conf"
	rm -f "$ROOT/var/lib/dbus/machine-id"
	rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
	rm -rf "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/*
	find "$ROOT" -xdev \( -type s -o -type p -o -type b -o -type c \) -delete

	local kver
	kver=$(basename "$(ls -d "$ROOT"/lib/modules/*/ | head -n1)")
	echo "kernel: $kver"
	echo "tree size: $(du -sh --apparent-size "$ROOT" | cut -f1) (apparent), $(du -sh "$ROOT" | cut -f1) on disk"
	echo "built in $((SECONDS - start)) s"
}

if [[ ${1:-} == --functions-only ]]; then
	return 0 2>/dev/null || exit 0
fi
main "$@"
