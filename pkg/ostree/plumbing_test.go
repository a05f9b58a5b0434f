package ostree

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestShowCommit(t *testing.T) {
	r := testRepo(t, ModeBareUser)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"usr/bin/a": "a", "usr/bin/b": "->a"})
	first, err := r.CommitDir(t.Context(), src, WithBranch("x/y"), fixedTime, WithoutBindings())
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.CommitDir(t.Context(), src, WithBranch("x/y"), fixedTime, WithSubject("s"), WithBody("b"),
		WithMetadataString("version", "7"), WithMetadata("n", BoolValue(true)))
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.ShowCommit("x/y")
	if err != nil {
		t.Fatal(err)
	}
	if info.Checksum != second || info.Parent != first || info.Version != "7" || info.Subject != "s" || info.Body != "b" ||
		!info.Timestamp.Equal(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ShowCommit: %+v", info)
	}
	if got := info.Metadata["n"]; got != "true" {
		t.Errorf("non-string metadata as %q, want GVariant text", got)
	}
	if got := info.Metadata["ostree.ref-binding"]; got != "['x/y']" {
		t.Errorf("ref binding as %q", got)
	}
	js, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"checksum":"` + second.String() + `","parent":"` + first.String() + `","subject":"s","body":"b","timestamp":"2021-01-01T00:00:00Z","version":"7","contentChecksum":`
	if !strings.HasPrefix(string(js), want) {
		t.Errorf("JSON %s\nwant it to start %s", js, want)
	}
	if root, err := r.ShowCommit(first.String()); err != nil || root.Parent != (Checksum{}) {
		t.Errorf("first commit: %+v, %v", root, err)
	} else if js, _ := json.Marshal(root); strings.Contains(string(js), `"parent"`) {
		t.Errorf("a commit without parent has one in JSON: %s", js)
	}
	if _, err := r.ShowCommit("no/such"); err == nil {
		t.Error("ShowCommit of a missing ref succeeded")
	}

	var lines []string
	err = r.Walk(t.Context(), second, "/usr/bin", WalkOptions{Headers: true}, func(e *TreeEntry) error {
		lines = append(lines, e.LsLine(false, false))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := strings.Fields(lines[0])[1], strings.Fields(lines[0])[2]
	want2 := []string{
		"d00755 " + uid + " " + gid + "      0 /usr/bin",
		"-00644 " + uid + " " + gid + "      1 /usr/bin/a",
		"l00777 " + uid + " " + gid + "      0 /usr/bin/b -> a",
	}
	if strings.Join(lines, "\n") != strings.Join(want2, "\n") {
		t.Errorf("ls lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want2, "\n"))
	}
}

func TestPlumbingJSON(t *testing.T) {
	var sum Checksum
	sum[0] = 0xab
	rep := &FsckReport{Commits: 1, Files: 2}
	if js, _ := json.Marshal(rep); string(js) != `{"commits":1,"dirtrees":0,"dirmetas":0,"files":2,"problems":[]}` {
		t.Errorf("clean report: %s", js)
	}
	rep.Problems = []FsckProblem{{Object: ObjectName{Checksum: sum, Type: ObjectDirTree}, Path: "ref x: /usr", Err: errors.New("missing")}}
	want := `"problems":[{"object":"` + sum.String() + `.dirtree","path":"ref x: /usr","error":"missing"}]`
	if js, _ := json.Marshal(rep); !strings.Contains(string(js), want) {
		t.Errorf("report with a problem: %s", js)
	}
	if js, _ := json.Marshal([]Ref{{Name: "a/b", Checksum: sum}}); string(js) != `[{"name":"a/b","checksum":"`+sum.String()+`"}]` {
		t.Errorf("refs: %s", js)
	}
}
