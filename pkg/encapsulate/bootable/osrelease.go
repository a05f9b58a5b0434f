package bootable

// osReleaseVersion picks the commit version from os-release fields: VERSION_ID, else VERSION.
func osReleaseVersion(fields map[string]string) string {
	if v := fields["VERSION_ID"]; v != "" {
		return v
	}
	return fields["VERSION"]
}
