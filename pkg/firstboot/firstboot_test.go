package firstboot_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/pkg/firstboot"
	"github.com/bootc-go/bootc/pkg/ignition"
)

// machine is a first-boot setup in a temporary directory: a root and a /var, the fw_cfg file's
// path (absent until a test writes it), and fake modprobe and systemctl that log their
// arguments.
type machine struct {
	t                    *testing.T
	root, varDir, config string
	modprobe, systemctl  string
	applied              []ignition.Target // the fake apply's calls
	applyErr             error
	report               *ignition.Report
}

func newMachine(t *testing.T) *machine {
	dir := t.TempDir()
	m := &machine{t: t, root: filepath.Join(dir, "root"), varDir: filepath.Join(dir, "root/var"),
		config: filepath.Join(dir, "fw_cfg/raw")}
	m.modprobe = fakeCommand(t, dir, "modprobe", 0)
	m.systemctl = fakeCommand(t, dir, "systemctl", 0)
	m.report = &ignition.Report{Written: []string{"/etc/motd"}, Users: []string{"core"}, Enabled: []string{"a.service", "b.timer"}}
	return m
}

// fakeCommand writes a script that appends its arguments, one call a line, to NAME.log and
// exits with code.
func fakeCommand(t *testing.T, dir, name string, code int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	script := "#!/bin/sh\necho \"$*\" >> " + p + ".log\nexit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// calls is what a fake command logged.
func calls(t *testing.T, prog string) []string {
	t.Helper()
	data, err := os.ReadFile(prog + ".log")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func (m *machine) writeConfig(body string) {
	m.t.Helper()
	if err := os.MkdirAll(filepath.Dir(m.config), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(m.config, []byte(body), 0o644); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) apply(_ context.Context, untrusted []byte, t ignition.Target) (*ignition.Report, error) {
	m.applied = append(m.applied, t)
	if m.applyErr != nil {
		return nil, m.applyErr
	}
	return m.report, nil
}

// opts are the options of one boot with the given boot ID.
func (m *machine) opts(boot string) []firstboot.Option {
	return []firstboot.Option{firstboot.WithTarget(ignition.Target{Root: m.root, Var: m.varDir}),
		firstboot.WithConfigPath(m.config), firstboot.WithCommands(m.modprobe, m.systemctl),
		firstboot.WithApply(m.apply), firstboot.WithBootID(boot)}
}

func (m *machine) stateFile(name string) string { return filepath.Join(m.varDir, "lib/bootc", name) }

func (m *machine) exists(name string) bool {
	_, err := os.Stat(m.stateFile(name))
	return err == nil
}

// TestFirstBootApplies: the first boot with a config applies it to the target, reloads systemd
// and starts the enabled units without blocking, and stamps what it did; the second boot does
// nothing at all (no command, no apply).
func TestFirstBootApplies(t *testing.T) {
	m := newMachine(t)
	m.writeConfig(`{"ignition": {"version": "3.4.0"}}`)
	res, err := firstboot.FirstBoot(t.Context(), m.opts("boot-1")...)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Record
	if res.AlreadyDone || r.Outcome != firstboot.Applied || r.BootID != "boot-1" || !strings.HasPrefix(r.ConfigDigest, "sha256:") ||
		!slices.Equal(r.Started, []string{"a.service", "b.timer"}) || !slices.Equal(r.Users, []string{"core"}) || r.Timestamp == "" {
		t.Errorf("first boot: %+v", res)
	}
	if want := []ignition.Target{{Root: m.root, Var: m.varDir}}; !slices.Equal(m.applied, want) {
		t.Errorf("applied to %v, want %v", m.applied, want)
	}
	if got := calls(t, m.modprobe); !slices.Equal(got, []string{"qemu_fw_cfg"}) {
		t.Errorf("modprobe calls: %q", got)
	}
	if got, want := calls(t, m.systemctl), []string{"daemon-reload", "start --no-block -- a.service b.timer"}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls: %q, want %q", got, want)
	}
	if !m.exists(firstboot.StampName) || m.exists(firstboot.FailureName) {
		t.Errorf("stamp %v, failure record %v", m.exists(firstboot.StampName), m.exists(firstboot.FailureName))
	}

	res, err = firstboot.FirstBoot(t.Context(), m.opts("boot-2")...)
	if err != nil || !res.AlreadyDone || res.Record.BootID != "boot-1" || res.Record.Timestamp != r.Timestamp {
		t.Errorf("second boot: %+v, %v", res, err)
	}
	if len(m.applied) != 1 || len(calls(t, m.systemctl)) != 2 || len(calls(t, m.modprobe)) != 1 {
		t.Errorf("the second boot did something: %d applies, systemctl %q, modprobe %q", len(m.applied), calls(t, m.systemctl), calls(t, m.modprobe))
	}
	if rec, err := firstboot.Check(t.Context(), m.opts("boot-2")...); err != nil || rec == nil || rec.Outcome != firstboot.Applied {
		t.Errorf("Check: %+v, %v", rec, err)
	}
}

// TestFirstBootNoConfig: without the fw_cfg item (and with a modprobe that fails: not a qemu
// machine) the boot stamps "no-config" with the warning and proceeds; no unit is touched.
// With the item present, a failing modprobe (the driver is built in) is no warning.
func TestFirstBootNoConfig(t *testing.T) {
	m := newMachine(t)
	m.modprobe = fakeCommand(t, t.TempDir(), "modprobe", 1)
	res, err := firstboot.FirstBoot(t.Context(), m.opts("boot-1")...)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Record; r.Outcome != firstboot.NoConfig || r.ConfigDigest != "" || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "qemu_fw_cfg") {
		t.Errorf("no config: %+v", r)
	}
	if len(m.applied) != 0 || calls(t, m.systemctl) != nil || !m.exists(firstboot.StampName) {
		t.Errorf("applied %v, systemctl %q, stamp %v", m.applied, calls(t, m.systemctl), m.exists(firstboot.StampName))
	}
	if res, err := firstboot.FirstBoot(t.Context(), m.opts("boot-2")...); err != nil || !res.AlreadyDone || res.Record.Outcome != firstboot.NoConfig {
		t.Errorf("second boot: %+v, %v", res, err)
	}

	m = newMachine(t)
	m.modprobe = fakeCommand(t, t.TempDir(), "modprobe", 1)
	m.writeConfig("{}")
	if res, err := firstboot.FirstBoot(t.Context(), m.opts("boot-1")...); err != nil || res.Record.Outcome != firstboot.Applied || len(res.Record.Warnings) != 0 {
		t.Errorf("config present, modprobe failing: %+v, %v", res, err)
	}
}

// TestFirstBootFailure: a failing apply is returned (ErrFailed) and recorded, nothing stamped,
// and the health check fails in that boot only; the next boot does not apply the same config
// again (ErrFailedBefore); a changed config is applied, stamped, and the failure record goes.
func TestFirstBootFailure(t *testing.T) {
	m := newMachine(t)
	m.writeConfig(`{"ignition": {"version": "3.4.0"}, "storage": {"disks": []}}`)
	m.applyErr = ignition.ErrUnsupported
	res, err := firstboot.FirstBoot(t.Context(), m.opts("boot-1")...)
	if !errors.Is(err, firstboot.ErrFailed) || !errors.Is(err, ignition.ErrUnsupported) || res.Record.Outcome != firstboot.Failed {
		t.Fatalf("failing apply: %+v, %v", res, err)
	}
	if m.exists(firstboot.StampName) || !m.exists(firstboot.FailureName) || calls(t, m.systemctl) != nil {
		t.Errorf("stamp %v, failure record %v, systemctl %q", m.exists(firstboot.StampName), m.exists(firstboot.FailureName), calls(t, m.systemctl))
	}
	if _, err := firstboot.Check(t.Context(), m.opts("boot-1")...); !errors.Is(err, firstboot.ErrFailed) || !strings.Contains(err.Error(), ignition.ErrUnsupported.Error()) {
		t.Errorf("Check in the failed boot: %v", err)
	}
	if rec, err := firstboot.Check(t.Context(), m.opts("boot-2")...); err != nil || rec.Outcome != firstboot.Failed {
		t.Errorf("Check in a later boot: %+v, %v (an old failure must not fail an update's boot)", rec, err)
	}

	m.applyErr = nil
	res, err = firstboot.FirstBoot(t.Context(), m.opts("boot-2")...)
	if !errors.Is(err, firstboot.ErrFailedBefore) || res.Record.BootID != "boot-1" || len(m.applied) != 1 {
		t.Fatalf("same config again: %+v, %v, %d applies", res, err, len(m.applied))
	}

	m.writeConfig(`{"ignition": {"version": "3.4.0"}}`)
	res, err = firstboot.FirstBoot(t.Context(), m.opts("boot-3")...)
	if err != nil || res.Record.Outcome != firstboot.Applied || len(m.applied) != 2 {
		t.Fatalf("changed config: %+v, %v", res, err)
	}
	if !m.exists(firstboot.StampName) || m.exists(firstboot.FailureName) {
		t.Errorf("stamp %v, failure record %v", m.exists(firstboot.StampName), m.exists(firstboot.FailureName))
	}
	if _, err := firstboot.Check(t.Context(), m.opts("boot-3")...); err != nil {
		t.Errorf("Check after the retry: %v", err)
	}
}

// TestFirstBootSystemctlFails: the config applied but the units could not be started: that is
// a failure too (recorded with what was applied), the command's output in the error.
func TestFirstBootSystemctlFails(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	m.systemctl = filepath.Join(dir, "systemctl")
	if err := os.WriteFile(m.systemctl, []byte("#!/bin/sh\necho \"$*\" >> $0.log\n[ \"$1\" != start ] || { echo 'Unit a.service not found.' >&2; exit 5; }\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.writeConfig("{}")
	res, err := firstboot.FirstBoot(t.Context(), m.opts("boot-1")...)
	if !errors.Is(err, firstboot.ErrFailed) || !strings.Contains(err.Error(), "Unit a.service not found.") {
		t.Fatalf("error %v", err)
	}
	if r := res.Record; r.Outcome != firstboot.Failed || !slices.Equal(r.Written, []string{"/etc/motd"}) || r.Started != nil || m.exists(firstboot.StampName) {
		t.Errorf("record %+v", r)
	}
}

// TestCheckNothingRecorded: before the first boot ran (or on a machine without the unit) the
// health check passes.
func TestCheckNothingRecorded(t *testing.T) {
	m := newMachine(t)
	if rec, err := firstboot.Check(t.Context(), m.opts("boot-1")...); rec != nil || err != nil {
		t.Errorf("Check: %+v, %v", rec, err)
	}
}

// TestFirstBootStopped: provisioning cut short by ctx (the unit stopped at shutdown) is not a
// failure of the config: nothing is recorded, and the next boot applies it.
func TestFirstBootStopped(t *testing.T) {
	m := newMachine(t)
	m.writeConfig("{}")
	ctx, cancel := context.WithCancel(t.Context())
	m.applyErr = context.Canceled
	cancel()
	if _, err := firstboot.FirstBoot(ctx, m.opts("boot-1")...); !errors.Is(err, context.Canceled) || errors.Is(err, firstboot.ErrFailed) {
		t.Fatalf("stopped: %v", err)
	}
	if m.exists(firstboot.StampName) || m.exists(firstboot.FailureName) {
		t.Errorf("stamp %v, failure record %v", m.exists(firstboot.StampName), m.exists(firstboot.FailureName))
	}
	m.applyErr = nil
	if res, err := firstboot.FirstBoot(t.Context(), m.opts("boot-2")...); err != nil || res.Record.Outcome != firstboot.Applied {
		t.Errorf("next boot: %+v, %v", res, err)
	}
}
