package install

import (
	"slices"
	"testing"
)

// TestDefaultKargs: a default is left out when the caller's kernel arguments set its key (TestToDisk
// checks the defaults on a boot entry).
func TestDefaultKargs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caller []string
		want   []string
	}{
		{"none-set", []string{"console=ttyS0", "quiet"}, []string{"panic=10", "rd.shell=0", "rd.emergency=reboot"}},
		{"own-panic", []string{"panic=0"}, []string{"rd.shell=0", "rd.emergency=reboot"}},
		{"key-without-value", []string{"rd.shell", "rd.emergency=halt"}, []string{"panic=10"}},
		{"prefix-is-not-the-key", []string{"panic_on_oops=1", "rd.shell.x=1"}, []string{"panic=10", "rd.shell=0", "rd.emergency=reboot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := defaultKargs(rebootKargs, tc.caller); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
