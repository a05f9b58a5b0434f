package ignition_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/pkg/ignition"
)

// cfg wraps the JSON of the parts after "ignition" into a spec 3.4.0 config.
func cfg(rest string) string {
	if rest != "" {
		rest = "," + rest
	}
	return `{"ignition":{"version":"3.4.0"}` + rest + `}`
}

func TestParseAccepts(t *testing.T) {
	for _, v := range []string{"3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0"} {
		c, err := ignition.Parse([]byte(`{"ignition":{"version":"` + v + `"},"storage":{"files":[{"path":"/etc/x","contents":{"source":"data:,hi"}}]}}`))
		if err != nil {
			t.Fatalf("spec %s: %v", v, err)
		}
		if c.Version() != v {
			t.Errorf("Version() = %q, want %q", c.Version(), v)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		kind         error
		want         []string // in the message
	}{
		{"disks", cfg(`"storage":{"disks":[{"device":"/dev/vda","wipeTable":true}]}`), ignition.ErrUnsupported, []string{"storage.disks: not supported (1 given)"}},
		{"raid", cfg(`"storage":{"raid":[{"name":"md","level":"raid1","devices":["/dev/vda","/dev/vdb"]}]}`), ignition.ErrUnsupported, []string{"storage.raid"}},
		{"filesystems", cfg(`"storage":{"filesystems":[{"device":"/dev/vda1","format":"ext4","path":"/var"}]}`), ignition.ErrUnsupported, []string{"storage.filesystems"}},
		{"luks", cfg(`"storage":{"luks":[{"name":"root","device":"/dev/vda2"}]}`), ignition.ErrUnsupported, []string{"storage.luks"}},
		{"http source", cfg(`"storage":{"files":[{"path":"/etc/a","contents":{"source":"http://example.com/a"}}]}`), ignition.ErrUnsupported, []string{"storage.files[0].contents.source: http sources", "data: URL"}},
		{"s3 append", cfg(`"storage":{"files":[{"path":"/etc/a","append":[{"source":"s3://bucket/a"}]}]}`), ignition.ErrUnsupported, []string{"storage.files[0].append[0].source: s3"}},
		{"usr path", cfg(`"storage":{"files":[{"path":"/etc/ok"},{"path":"/etc/ok2"},{"path":"/usr/bin/x"}]}`), ignition.ErrUnsupported, []string{"storage.files[2].path: /usr/bin/x is not under /etc, /var or /home"}},
		{"dotdot", cfg(`"storage":{"directories":[{"path":"/etc/../usr/lib"}]}`), ignition.ErrInvalid, []string{`storage.directories.0.path`, "not fully simplified"}},
		{"hard link target", cfg(`"storage":{"links":[{"path":"/etc/x","target":"/usr/bin/sh","hard":true}]}`), ignition.ErrUnsupported, []string{"storage.links[0].target: /usr/bin/sh"}},
		{"spec 2.2.0", `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/a"}]}}`, ignition.ErrInvalid, []string{"spec 2.2.0", "spec 3.x", "butane"}},
		{"unknown version", `{"ignition":{"version":"9.9.9"}}`, ignition.ErrInvalid, []string{"spec 9.9.9 is not supported"}},
		{"experimental", `{"ignition":{"version":"3.6.0-experimental"}}`, ignition.ErrInvalid, []string{"3.6.0-experimental"}},
		{"no version", `{"passwd":{}}`, ignition.ErrInvalid, []string{"ignition.version: missing"}},
		{"not json", `variant: fcos`, ignition.ErrInvalid, []string{"not a JSON object"}},
		{"ignition's own validation", cfg(`"storage":{"files":[{"path":"etc/relative"}]}`), ignition.ErrInvalid, []string{"path not absolute"}},
		{"kernelArguments", cfg(`"kernelArguments":{"shouldExist":["quiet"]}`), ignition.ErrUnsupported, []string{"kernelArguments", "--karg"}},
		{"merge", `{"ignition":{"version":"3.4.0","config":{"merge":[{"source":"https://example.com/c.ign"}]}}}`, ignition.ErrUnsupported, []string{"ignition.config.merge[0]"}},
		{"tls", `{"ignition":{"version":"3.4.0","security":{"tls":{"certificateAuthorities":[{"source":"data:,x"}]}}}}`, ignition.ErrUnsupported, []string{"ignition.security.tls.certificateAuthorities[0]"}},
		{"compression", cfg(`"storage":{"files":[{"path":"/etc/a","contents":{"source":"data:,x","compression":"xz"}}]}`), ignition.ErrInvalid, []string{"compression"}},
		{"remove user", cfg(`"passwd":{"users":[{"name":"old","shouldExist":false}]}`), ignition.ErrUnsupported, []string{"passwd.users[0].shouldExist"}},
		{"colon in gecos", cfg(`"passwd":{"users":[{"name":"u","gecos":"a:b"}]}`), ignition.ErrUnsupported, []string{"passwd.users[0].gecos"}},
		{"unit name", cfg(`"systemd":{"units":[{"name":"../x.service","contents":"[Unit]"}]}`), ignition.ErrUnsupported, []string{"systemd.units[0].name"}},
		{"bad hash", cfg(`"storage":{"files":[{"path":"/etc/a","contents":{"source":"data:,x","verification":{"hash":"sha512-00"}}}]}`), ignition.ErrInvalid, []string{"hash"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ignition.Parse([]byte(tc.config))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Parse = %v, %v; want %v", c, err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// Every problem is reported, each with its field.
func TestParseCollectsEveryProblem(t *testing.T) {
	_, err := ignition.Parse([]byte(cfg(`"storage":{"disks":[{"device":"/dev/vda"}],"files":[{"path":"/usr/a"},{"path":"/etc/b","contents":{"source":"https://x/b"}}]},"kernelArguments":{"shouldNotExist":["quiet"]}`)))
	var ce *ignition.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Parse: %v", err)
	}
	var fields []string
	for _, p := range ce.Problems {
		fields = append(fields, p.Field)
	}
	want := "kernelArguments storage.disks storage.files[0].path storage.files[1].contents.source"
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("fields %q, want %q", got, want)
	}
}
