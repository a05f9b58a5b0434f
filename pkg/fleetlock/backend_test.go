package fleetlock

import (
	"context"
	"errors"
	"slices"
	"testing"
)

var testConfig = Config{DefaultSlots: 2, Groups: map[string]int{"workers": 1, "frozen": 0}}

// testBackend is the behaviour every Backend has; newBackend makes an empty one of cfg.
func testBackend(t *testing.T, newBackend func(t *testing.T, cfg Config) Backend) {
	ctx := context.Background()
	holders := func(t *testing.T, b Backend, group string, want ...string) {
		t.Helper()
		s, err := b.Holders(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(s.Holders, want) || s.Holders == nil {
			t.Fatalf("holders of %s = %#v, want %q", group, s.Holders, want)
		}
	}
	t.Run("recursive and counting", func(t *testing.T) {
		b := newBackend(t, testConfig)
		holders(t, b, DefaultGroup)
		for _, id := range []string{"b", "a", "b"} {
			if err := b.Lock(ctx, DefaultGroup, id); err != nil {
				t.Fatalf("lock %s: %v", id, err)
			}
		}
		holders(t, b, DefaultGroup, "a", "b")
		if err := b.Lock(ctx, DefaultGroup, "c"); !errors.Is(err, ErrFull) {
			t.Fatalf("third lock of two slots: %v, want ErrFull", err)
		}
		if err := b.Lock(ctx, DefaultGroup, "a"); err != nil {
			t.Fatalf("a holder locking again on a full semaphore: %v", err)
		}
		for _, id := range []string{"nobody", "a", "a"} {
			if err := b.Unlock(ctx, DefaultGroup, id); err != nil {
				t.Fatalf("unlock %s: %v", id, err)
			}
		}
		holders(t, b, DefaultGroup, "b")
		if err := b.Lock(ctx, DefaultGroup, "c"); err != nil {
			t.Fatal(err)
		}
		holders(t, b, DefaultGroup, "b", "c")
	})
	t.Run("groups", func(t *testing.T) {
		b := newBackend(t, testConfig)
		if s, err := b.Holders(ctx, "workers"); err != nil || s.TotalSlots != 1 {
			t.Fatalf("workers: %+v, %v; want 1 slot", s, err)
		}
		must(t, b.Lock(ctx, "workers", "a"))
		if err := b.Lock(ctx, "workers", "b"); !errors.Is(err, ErrFull) {
			t.Fatalf("second lock of workers' one slot: %v", err)
		}
		if err := b.Lock(ctx, "frozen", "a"); !errors.Is(err, ErrFull) {
			t.Fatalf("lock of a group of 0 slots: %v", err)
		}
		holders(t, b, DefaultGroup) // groups are independent
		for name, op := range map[string]func() error{
			"lock":    func() error { return b.Lock(ctx, "typo", "a") },
			"unlock":  func() error { return b.Unlock(ctx, "typo", "a") },
			"holders": func() error { _, err := b.Holders(ctx, "typo"); return err },
		} {
			if err := op(); !errors.Is(err, ErrUnknownGroup) {
				t.Errorf("%s of an unknown group: %v, want ErrUnknownGroup", name, err)
			}
		}
	})
}

func TestMemoryBackend(t *testing.T) {
	testBackend(t, func(t *testing.T, cfg Config) Backend {
		b, err := NewMemoryBackend(cfg)
		must(t, err)
		return b
	})
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no default slots": {},
		"negative slots":   {DefaultSlots: 1, Groups: map[string]int{"a": -1}},
		"bad group name":   {DefaultSlots: 1, Groups: map[string]int{"a b": 1}},
	} {
		if _, err := NewMemoryBackend(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
