package bootable

import (
	"testing"
)

func TestOSReleaseVersion(t *testing.T) {
	if v := osReleaseVersion(map[string]string{"VERSION": "12 (bookworm)"}); v != "12 (bookworm)" {
		t.Errorf("VERSION fallback: %q", v)
	}
	if v := osReleaseVersion(map[string]string{"VERSION": "12 (bookworm)", "VERSION_ID": "12"}); v != "12" {
		t.Errorf("VERSION_ID first: %q", v)
	}
}

func TestSkipContents(t *testing.T) {
	for p, want := range map[string]bool{
		"dev": true, "proc": true, "sys": true, "run": true, "tmp": true, "boot/grub": true, "boot/efi/EFI": true,
		"boot": false, "var": false, "var/tmp": false, "usr/dev": false, "devices": false, "bootx": false,
	} {
		if got := skipContents(p); got != want {
			t.Errorf("skipContents(%q) = %v, want %v", p, got, want)
		}
	}
}
