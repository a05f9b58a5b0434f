package fleetlock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Backend stores the semaphores of the groups. Every method is safe for concurrent use, and a
// backend shared by several servers (etcd) keeps each change atomic.
type Backend interface {
	// Lock gives id a slot of group's semaphore. It is recursive: when id holds a slot already
	// it succeeds without change. A full semaphore is ErrFull, a group the configuration does
	// not name ErrUnknownGroup (both wrapped).
	Lock(ctx context.Context, group, id string) error
	// Unlock gives id's slot back. When id holds none it succeeds without change.
	Unlock(ctx context.Context, group, id string) error
	// Holders returns group's semaphore (an empty one with the configured slots when no host
	// has locked it yet).
	Holders(ctx context.Context, group string) (Semaphore, error)
}

// Semaphore is one group's counting semaphore as airlock stores it in etcd:
// {"total_slots":N,"holders":[ids]}, holders sorted and never null.
type Semaphore struct {
	TotalSlots int      `json:"total_slots"`
	Holders    []string `json:"holders"`
}

var (
	// ErrFull is the refusal of a lock because every slot of the group is held.
	ErrFull = errors.New("all slots of the group are held")
	// ErrUnknownGroup is the refusal of a group that the configuration does not name.
	ErrUnknownGroup = errors.New("unknown group")
)

// Config says which groups exist and how many hosts of each may reboot at once.
//
// As in airlock, the groups are DefaultGroup (with DefaultSlots slots) and those of Groups;
// a request for any other group is refused with ErrUnknownGroup, so that a typo in a host's
// configuration cannot create a group of its own that ignores the fleet's limit. The slot count
// is written when a group's semaphore is created; like airlock, a backend keeps the count it
// finds stored, so a changed Config applies to groups that have no semaphore yet, and replicas
// with different configurations cannot fight over it. To change a stored count, rewrite the
// key's total_slots (etcdctl put) or delete the key while no host holds a slot.
type Config struct {
	// DefaultSlots is the number of slots of DefaultGroup (at least 1).
	DefaultSlots int
	// Groups are the other groups and their slots (0 freezes a group: no host may reboot).
	Groups map[string]int
}

// slots returns the configured slot count of group.
func (c Config) slots(group string) (int, error) {
	if n, ok := c.Groups[group]; ok {
		return n, nil
	}
	if group == DefaultGroup {
		return c.DefaultSlots, nil
	}
	return 0, fmt.Errorf("%w %q: configure it with its slots (e.g. --group %s=1)", ErrUnknownGroup, group, group)
}

func (c Config) validate() error {
	if c.DefaultSlots < 1 {
		return fmt.Errorf("fleetlock: default slots %d: need at least 1", c.DefaultSlots)
	}
	for g, n := range c.Groups {
		if !GroupPattern.MatchString(g) {
			return fmt.Errorf("fleetlock: group %q: a group name has only letters, digits, '.' and '-'", g)
		}
		if n < 0 {
			return fmt.Errorf("fleetlock: group %q: %d slots: need 0 or more", g, n)
		}
	}
	return nil
}

// lock adds id to s (sorted); changed is false when id held a slot already.
func (s *Semaphore) lock(id string) (changed bool, err error) {
	i, found := slices.BinarySearch(s.Holders, id)
	if found {
		return false, nil
	}
	if len(s.Holders) >= s.TotalSlots {
		return false, fmt.Errorf("%w: %d of %d", ErrFull, len(s.Holders), s.TotalSlots)
	}
	s.Holders = slices.Insert(s.Holders, i, id)
	return true, nil
}

// unlock removes id from s; changed is false when id held no slot.
func (s *Semaphore) unlock(id string) (changed bool) {
	i, found := slices.BinarySearch(s.Holders, id)
	if found {
		s.Holders = slices.Delete(s.Holders, i, i+1)
	}
	return found
}

// newSemaphore is an empty semaphore of n slots.
func newSemaphore(n int) Semaphore { return Semaphore{TotalSlots: n, Holders: []string{}} }

// MemoryBackend keeps the semaphores in memory: for one server that may forget the locks when
// it stops (a demo, tests).
type MemoryBackend struct {
	cfg  Config
	mu   sync.Mutex
	sems map[string]*Semaphore
}

// NewMemoryBackend returns an empty in-memory backend of the groups of cfg.
func NewMemoryBackend(cfg Config) (*MemoryBackend, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &MemoryBackend{cfg: cfg, sems: map[string]*Semaphore{}}, nil
}

// change runs f on group's semaphore (created on first use) under the lock.
func (m *MemoryBackend) change(group string, f func(*Semaphore) error) error {
	n, err := m.cfg.slots(group)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sems[group]
	if !ok {
		s = new(newSemaphore(n))
		m.sems[group] = s
	}
	return f(s)
}

// Lock implements Backend.
func (m *MemoryBackend) Lock(_ context.Context, group, id string) error {
	return m.change(group, func(s *Semaphore) error { _, err := s.lock(id); return err })
}

// Unlock implements Backend.
func (m *MemoryBackend) Unlock(_ context.Context, group, id string) error {
	return m.change(group, func(s *Semaphore) error { s.unlock(id); return nil })
}

// Holders implements Backend.
func (m *MemoryBackend) Holders(_ context.Context, group string) (Semaphore, error) {
	var out Semaphore
	err := m.change(group, func(s *Semaphore) error {
		out = Semaphore{TotalSlots: s.TotalSlots, Holders: slices.Clone(s.Holders)}
		return nil
	})
	return out, err
}
