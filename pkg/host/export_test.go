package host

// WithBooted makes the deployment id (STATEROOT/COMMIT.SERIAL) count as booted for
// MarkBootGood and CheckFallback, as on a machine that GRUB started from another entry than
// the default; a sysroot directory otherwise counts the default as booted.
func WithBooted(id string) Option { return func(c *config) { c.bootedForTest = id } }
