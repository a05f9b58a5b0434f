package cliargs

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// toyApp is an application that knows nothing of bootc: the package works on any command tree.
func toyApp() *cli.App {
	return &cli.App{
		Name:  "toy",
		Flags: []cli.Flag{&cli.StringFlag{Name: "root"}},
		Commands: []*cli.Command{
			{Name: "ls", Flags: []cli.Flag{&cli.BoolFlag{Name: "recursive", Aliases: []string{"R"}}, &cli.StringFlag{Name: "repo", Required: true}}},
			{Name: "remote", Subcommands: []*cli.Command{{Name: "add"}, {Name: "delete"}}},
		},
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // nil: a usage error containing wantErr
		err  []string
	}{
		{"flags after positionals", []string{"ls", "--repo", "r", "REF", "/usr", "-R"}, []string{"toy", "ls", "--repo", "r", "-R", "--", "REF", "/usr"}, nil},
		{"global flag after the command", []string{"ls", "x", "--root", "/mnt", "--repo=r"}, []string{"toy", "--root", "/mnt", "ls", "--repo=r", "--", "x"}, nil},
		{"dash-dash ends the flags", []string{"ls", "--repo", "r", "--", "-R"}, []string{"toy", "ls", "--repo", "r", "--", "-R"}, nil},
		{"help command", []string{"help", "remote", "add"}, []string{"toy", "remote", "add", "--help"}, nil},
		{"typo in a flag", []string{"ls", "--recursiv"}, nil, []string{"unknown flag --recursiv", "did you mean --recursive?", "see 'toy ls --help'"}},
		{"typo in a command", []string{"lss"}, nil, []string{"unknown command 'lss'", "did you mean 'ls'?"}},
		{"missing value", []string{"ls", "--repo"}, nil, []string{"--repo needs a value: write --repo VALUE"}},
		{"missing subcommand", []string{"remote"}, nil, []string{"'toy remote' needs a subcommand: add, delete"}},
		{"missing required flag", []string{"ls", "x"}, nil, []string{"--repo is required"}},
		{"no command", nil, nil, []string{"no command given: name one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(toyApp(), tc.args, "name one")
			if tc.want != nil {
				if err != nil || !slices.Equal(got, tc.want) {
					t.Fatalf("Normalize(%q) = %q, %v; want %q", tc.args, got, err, tc.want)
				}
				return
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("Normalize(%q) = %q, %v; want a usage error", tc.args, got, err)
			}
			for _, part := range tc.err {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q lacks %q", err, part)
				}
			}
		})
	}
}

func TestComplete(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"l"}, "ls\n"},
		{[]string{"remote", ""}, "add\ndelete\n"},
		{[]string{"ls", "--re"}, "--recursive\n--repo\n"},
		{[]string{"ls", "--", ""}, ""},     // after "--": file names, from the shell
		{[]string{"ls", "--repo", ""}, ""}, // the value of --repo
	} {
		var b bytes.Buffer
		Complete(toyApp(), &b, tc.args)
		if b.String() != tc.want {
			t.Errorf("Complete(%q) = %q, want %q", tc.args, b.String(), tc.want)
		}
	}
}
