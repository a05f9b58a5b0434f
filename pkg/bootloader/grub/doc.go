// Package grub manages GRUB 2 on a sysroot: the environment block that carries the boot
// counter, the menu generated from the Boot Loader Specification entries of each boot version,
// and the core images that make a disk boot by itself, for legacy BIOS and UEFI.
//
// # Layout
//
// GRUB's prefix is /boot/grub on the root filesystem (the early config embedded in the core
// image finds it by UUID). Setup makes the fixed part:
//
//	/boot/grub/grub.cfg -> ../loader/grub.cfg   (a symlink; its presence is Enabled)
//	/boot/grub/grubenv                          (the environment block, a regular 1024-byte file)
//
// and the sysroot writes /boot/loader.N/grub.cfg (Config) next to loader.N/entries for every
// boot version, so the /boot/loader symlink swap switches entries, kernels and menu together,
// as libostree does with grub2-mkconfig. The environment block stays outside loader.N: GRUB's
// save_env rewrites it in place and must find the same file on every boot.
//
// # Boot counting
//
// Debian's GRUB 2.06 has no arithmetic, so the menu counts down with an explicit chain of
// comparisons (1..MaxBootAttempts at most). Two variables of the environment block carry the
// state between GRUB and userspace, as greenboot's do:
//
//	state      boot_counter  boot_success  GRUB at boot
//	fresh      unset         any           boots entry 0; counts nothing
//	counting   N (N..1)      0             boot_counter=N-1, boots entry 0
//	exhausted  0             0             boot_counter=-1, boots entry 1 (the rollback)
//	fallback   -1            0             stays -1, boots entry 1 on every boot
//	success    unset         1             boots entry 0
//
// and then, on every boot, GRUB sets boot_success=0 and saves it. Userspace:
//
//   - before switching to a new default deployment, sets boot_counter=N and boot_success=0
//     (sysroot.WriteOptions.BootAttempts does this before its commit point);
//   - once the boot is found good, sets boot_success=1 and unsets boot_counter (success);
//   - on seeing boot_counter=-1 (the machine runs the rollback because the default never
//     succeeded), rolls back so that the failing deployment is no longer the default, and unsets
//     boot_counter.
//
// A boot_counter that is not a number of the chain (above BootAttempts, or garbage) counts as
// the chain's highest, so any counter ends at the fallback. With a single entry the fallback
// boots entry 0 again (GRUB boots entry 0 when the default does not exist), and the counter
// still shows -1.
//
// GRUB's save_env writes the block's sectors directly: it refuses a block on LUKS, LVM, RAID or
// btrfs, and then the counter does not move (the menu still boots the default).
package grub
