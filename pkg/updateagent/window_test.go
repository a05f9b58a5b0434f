package updateagent

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSchedule(t *testing.T) {
	ny, kolkata := mustLoc(t, "America/New_York"), mustLoc(t, "Asia/Kolkata")
	at := func(loc *time.Location, s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	utc := &Schedule{Location: time.UTC, Windows: []Window{
		{Days: []time.Weekday{time.Sunday}, Start: 23*60 + 30, Length: 60 * time.Minute}, // wraps into Monday
		{Days: []time.Weekday{time.Wednesday, time.Thursday}, Start: 10 * 60, Length: 30 * time.Minute},
		{Days: []time.Weekday{time.Wednesday}, Start: 10*60 + 15, Length: 30 * time.Minute}, // overlaps
	}}
	// 2026-03-08 is a Sunday; New York changes to DST at 02:00 that day.
	dst := &Schedule{Location: ny, Windows: []Window{{Days: []time.Weekday{time.Sunday}, Start: 90, Length: 60 * time.Minute}}}
	fall := &Schedule{Location: ny, Windows: []Window{{Days: []time.Weekday{time.Sunday}, Start: 60, Length: 90 * time.Minute}}}
	ist := &Schedule{Location: kolkata, Windows: []Window{{Days: []time.Weekday{time.Saturday}, Start: 23*60 + 30, Length: 60 * time.Minute}}}
	for name, tc := range map[string]struct {
		s     *Schedule
		now   time.Time
		allow bool
		next  time.Time
	}{
		"before sunday":       {utc, at(time.UTC, "2026-03-08 23:29"), false, at(time.UTC, "2026-03-08 23:30")},
		"start inclusive":     {utc, at(time.UTC, "2026-03-08 23:30"), true, at(time.UTC, "2026-03-08 23:30")},
		"past midnight":       {utc, at(time.UTC, "2026-03-09 00:10"), true, at(time.UTC, "2026-03-11 10:00")},
		"end exclusive":       {utc, at(time.UTC, "2026-03-09 00:30"), false, at(time.UTC, "2026-03-11 10:00")},
		"overlap":             {utc, at(time.UTC, "2026-03-11 10:40"), true, at(time.UTC, "2026-03-12 10:00")},
		"overlap end":         {utc, at(time.UTC, "2026-03-11 10:45"), false, at(time.UTC, "2026-03-12 10:00")},
		"saturday to sunday":  {utc, at(time.UTC, "2026-03-14 12:00"), false, at(time.UTC, "2026-03-15 23:30")},
		"dst real length in":  {dst, at(ny, "2026-03-08 03:15"), true, at(ny, "2026-03-15 01:30")},
		"dst real length end": {dst, at(ny, "2026-03-08 03:30"), false, at(ny, "2026-03-15 01:30")},
		"dst before":          {dst, at(ny, "2026-03-08 01:29"), false, at(ny, "2026-03-08 01:30")},
		"fall back in":        {fall, time.Date(2026, 11, 1, 6, 20, 0, 0, time.UTC), true, at(ny, "2026-11-08 01:00")},      // 01:20 EST, 80 min after 01:00 EDT
		"fall back end":       {fall, time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), false, at(ny, "2026-11-08 01:00")},     // 01:30 EST
		"kolkata":             {ist, time.Date(2026, 3, 14, 18, 30, 0, 0, time.UTC), true, at(kolkata, "2026-03-21 23:30")}, // 00:00 IST Sunday
		"kolkata utc before":  {ist, time.Date(2026, 3, 14, 17, 59, 0, 0, time.UTC), false, time.Date(2026, 3, 14, 18, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			if got := tc.s.Allows(tc.now); got != tc.allow {
				t.Errorf("Allows(%v) = %v", tc.now, got)
			}
			if got := tc.s.Next(tc.now); !got.Equal(tc.next) {
				t.Errorf("Next(%v) = %v, want %v", tc.now, got, tc.next)
			}
		})
	}
}
