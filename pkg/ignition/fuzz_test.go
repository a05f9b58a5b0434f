package ignition_test

import (
	"errors"
	"testing"

	"github.com/bootc-go/bootc/pkg/ignition"
)

// FuzzParse: Parse never panics, and refuses only with ErrInvalid or ErrUnsupported.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		cfg(`"storage":{"files":[{"path":"/etc/a","mode":420,"contents":{"source":"data:;base64,aGk=","compression":"gzip"}}],"links":[{"path":"/var/l","target":"/etc/a","hard":true}]}`),
		cfg(`"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 A"],"groups":["wheel"]}],"groups":[{"name":"g","gid":5}]}`),
		cfg(`"systemd":{"units":[{"name":"a.service","enabled":true,"contents":"[Install]\nWantedBy=x","dropins":[{"name":"d.conf","contents":""}]}]}`),
		cfg(`"storage":{"disks":[{"device":"/dev/vda"}]},"kernelArguments":{"shouldExist":["a"]}`),
		`{"ignition":{"version":"2.2.0"}}`, `{"ignition":{"version":"3.5.0","config":{"merge":[{"source":"http://x"}]}}}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		c, err := ignition.Parse(untrusted)
		if err != nil {
			if c != nil || !(errors.Is(err, ignition.ErrInvalid) || errors.Is(err, ignition.ErrUnsupported)) {
				t.Fatalf("Parse = %v, %v", c, err)
			}
		} else if c == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
	})
}
