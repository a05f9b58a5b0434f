package updateagent

// SetSystemctl swaps the systemctl the default rebooter runs; it returns the previous one.
func SetSystemctl(path string) string {
	prev := systemctlPath
	systemctlPath = path
	return prev
}
