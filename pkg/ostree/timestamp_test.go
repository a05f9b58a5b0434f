package ostree

import (
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	want := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"2021-01-01T00:00:00Z", "2021-01-01 00:00:00 UTC", "@1609459200", "2021-01-01 01:00:00 +0100", "2021-01-01"} {
		got, err := ParseTimestamp(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTimestamp(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "@-1", "@x", "tomorrow", "1969-12-31"} {
		if _, err := ParseTimestamp(s); err == nil {
			t.Errorf("ParseTimestamp(%q) accepted", s)
		}
	}
}

func TestParseSourceDateEpoch(t *testing.T) {
	if got, err := ParseSourceDateEpoch("1609459200"); err != nil || !got.Equal(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseSourceDateEpoch = %v, %v", got, err)
	}
	for _, s := range []string{"", "-1", "@1", "1.5", "x"} {
		if _, err := ParseSourceDateEpoch(s); err == nil {
			t.Errorf("ParseSourceDateEpoch(%q) accepted", s)
		}
	}
}

// The library reads no environment: SOURCE_DATE_EPOCH is the caller's to pass as WithTimestamp.
func TestCommitIgnoresSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "0")
	repo, err := Init(t.Context(), t.TempDir()+"/repo", ModeBareUser)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	sum, err := repo.CommitDir(t.Context(), t.TempDir(), WithBranch("x"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.ReadCommit(sum)
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(int64(c.Timestamp), 0); got.Before(before) {
		t.Errorf("commit time %s with SOURCE_DATE_EPOCH=0 set: want now", got)
	}
}
