package ostree

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTimestamp parses a commit time as `ostree commit --timestamp` takes it: RFC 3339,
// "YYYY-MM-DD HH:MM:SS" with an optional zone ("UTC", "+0100"), a bare date, or "@SECONDS" since
// the epoch. Times before 1970 are refused: a commit stores unsigned seconds.
func ParseTimestamp(s string) (time.Time, error) {
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		secs, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || secs < 0 {
			return time.Time{}, fmt.Errorf("timestamp %q: expected @ and a non-negative number of seconds", s)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Unix() < 0 {
				return time.Time{}, fmt.Errorf("timestamp %q is before 1970", s)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q: use RFC 3339 (2024-05-01T12:00:00Z), 'YYYY-MM-DD HH:MM:SS UTC' or @UNIXSECONDS", s)
}

// ParseSourceDateEpoch parses a SOURCE_DATE_EPOCH value (https://reproducible-builds.org/specs/source-date-epoch/):
// a non-negative number of seconds since the epoch. The caller reads the variable.
func ParseSourceDateEpoch(v string) (time.Time, error) {
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a non-negative number of seconds", v)
	}
	return time.Unix(secs, 0), nil
}

// CommitTime resolves a commit's time as the build tools do: from flag (ParseTimestamp) if it is
// set, else from sourceDateEpoch (the caller reads SOURCE_DATE_EPOCH), else none (ok false).
func CommitTime(flag, sourceDateEpoch string) (t time.Time, ok bool, err error) {
	switch {
	case flag != "":
		t, err = ParseTimestamp(flag)
	case sourceDateEpoch != "":
		t, err = ParseSourceDateEpoch(sourceDateEpoch)
	default:
		return t, false, nil
	}
	return t, err == nil, err
}
