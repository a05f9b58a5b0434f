// Package host is the host lifecycle of a machine that boots container images: status,
// switch, upgrade (check, download-only, from-downloaded), rollback and install, as functions
// over an opened sysroot. It is what `bootc status|switch|upgrade|rollback|install` call, and
// what an update agent, an installer or a test calls directly.
//
// # Where host sits
//
// The data path from a build to a booted machine:
//
//	rootfs ──(encapsulate/bootable)──▶ OSTree commit ──(encapsulate)──▶ OCI image
//	  ──(transport)──▶ registry, oci dir, archive, containers-storage
//	  ──(verify: trust policy)──▶ verified manifest digest
//	  ──(imagestore.Pull)──▶ image store: the image's layers and merged commit in ostree/repo,
//	                          under ostree/container/... refs
//	  ──(sysroot.Deploy)──▶ deployment: a hardlink checkout, /etc merged, /var seeded, origin
//	  ──(sysroot.WriteDeployments)──▶ boot entries (/boot/loader), the new boot order
//
// Package host owns the sequence from "verify" to "boot entries" for one machine: it verifies
// the image by the trust policy and pins the pull to the verified digest, pulls it into the
// sysroot's image store (dropping again what a refused image added), deploys it with the kernel
// arguments of the image and the admin, places it in the boot order with the retention rules,
// writes the boot configuration, and garbage-collects the images and objects no deployment
// needs. It never fetches anything it was not asked to, never reboots on its own (Reboot is for
// callers that decide to), prints nothing and reads
// no environment variables: progress and warnings are Events passed to the WithProgress
// callback, debug logs go to the WithLogger logger, and every outcome is a typed result or a
// typed error.
//
// # Use
//
//	h, err := host.Open(ctx, "/", host.WithProgress(render))
//	if err != nil { ... }
//	defer h.Close()
//	res, err := h.Upgrade(ctx, host.UpgradeDeploy)
//
// # Staging
//
// On the running system (and wherever WithRuntimeDir gives runtime state), Switch and Upgrade
// stage the new deployment, as `ostree admin deploy --stage` does: the deployment is made but
// its /etc merge and boot entry wait for FinalizeStaged, which systemd runs at shutdown
// (FinalizeUnit, `bootc internals finalize-staged`), so that /etc edits made until the reboot
// are carried over. The staged state is libostree's /run/ostree/staged-deployment, so `ostree
// admin status` shows the deployment as staged; Status reports it as staged. A sysroot
// directory gets its deployments written at once.
//
// Open takes the sysroot lock (reporting WaitingForLock when another command holds it) and
// keeps it until Close; every method of Host works on the state loaded under the lock. Status
// reads a sysroot without the lock; InstallToFilesystem creates a sysroot and installs into it.
//
// # Errors
//
// The states a caller acts on are sentinel errors (ErrNoBootedDeployment, ErrNoImage,
// ErrNoDownloadedUpdate, ErrNothingToRollBack, ErrAlreadyInstalled, ErrNotLive;
// sysroot.ErrNotSysroot for a directory that holds no sysroot). A refused image keeps the error
// of the package that refused it: verify.ErrRejected and verify.ErrAcceptsAnything from the
// trust policy, imagestore.ErrDigestMismatch, ErrBadLayer, ErrNotBootable and ErrImageChanged
// from the pull; health.ErrNotExecutable for an image whose health checks could not run.
// ErrInvalidConfig is a bad /etc/bootc/config.toml (or the image's); ErrUpdateFailedBefore is
// the Err of the Warning with which upgrades hold back an image that failed to boot here.
// Compare with errors.Is and errors.As.
//
// # Boot counting
//
// HealthCheck, MarkBootGood and CheckFallback are the host's side of GRUB's boot counter (see
// boot.go and dist/systemd/README.md); BootAttempts gives a new deployment's count.
package host
