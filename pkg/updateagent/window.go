package updateagent

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxWindowLength bounds a reboot window's length_minutes: one week.
const MaxWindowLength = 7 * 24 * time.Hour

// Window is a weekly reboot window: on each of Days it opens at Start (minutes after local
// midnight, wall-clock time) and lasts Length of real time, so across a DST change it keeps its
// length (and a start in a skipped hour begins after the change, as time.Date normalizes it).
type Window struct {
	Days   []time.Weekday
	Start  int
	Length time.Duration
}

// Schedule is the reboot windows of strategy periodic, in their time zone. Windows may overlap
// and run past midnight and past the end of the week.
type Schedule struct {
	Location *time.Location
	Windows  []Window
}

// occurrences calls fn with the start and end of every window that opens on the local dates
// from `from` days before now to `to` days after it.
func (s *Schedule) occurrences(now time.Time, from, to int, fn func(start, end time.Time)) {
	local := now.In(s.Location)
	y, m, d := local.Date()
	for i := -from; i <= to; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, s.Location)
		for _, w := range s.Windows {
			for _, wd := range w.Days {
				if wd != day.Weekday() {
					continue
				}
				start := time.Date(y, m, d+i, w.Start/60, w.Start%60, 0, 0, s.Location)
				fn(start, start.Add(w.Length))
			}
		}
	}
}

// Allows reports whether now is inside a window (start inclusive, end exclusive).
func (s *Schedule) Allows(now time.Time) bool {
	in := false
	s.occurrences(now, 8, 0, func(start, end time.Time) {
		in = in || (!now.Before(start) && now.Before(end))
	})
	return in
}

// Next returns the next time a window opens at or after now (the zero time without windows).
func (s *Schedule) Next(now time.Time) time.Time {
	var next time.Time
	s.occurrences(now, 0, 8, func(start, _ time.Time) {
		if !start.Before(now) && (next.IsZero() || start.Before(next)) {
			next = start
		}
	})
	return next
}

var weekdays = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
}

// parseWindow checks one [[updates.periodic.window]].
func parseWindow(e windowEntry) (Window, error) {
	var w Window
	if len(e.Days) == 0 {
		return w, errors.New("days is empty or missing: list days such as [\"Mon\", \"Sat\"]")
	}
	for _, d := range e.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return w, fmt.Errorf("day %q: use Mon, Tue, Wed, Thu, Fri, Sat or Sun", d)
		}
		w.Days = append(w.Days, wd)
	}
	t, err := time.Parse("15:04", e.StartTime)
	if err != nil || len(e.StartTime) != 5 {
		return w, fmt.Errorf("start_time %q: use HH:MM, 24-hour (e.g. \"23:30\")", e.StartTime)
	}
	w.Start = t.Hour()*60 + t.Minute()
	w.Length = time.Duration(e.LengthMinutes) * time.Minute
	if w.Length <= 0 || w.Length > MaxWindowLength {
		return w, fmt.Errorf("length_minutes %d: use 1 to %d", e.LengthMinutes, int(MaxWindowLength/time.Minute))
	}
	return w, nil
}
