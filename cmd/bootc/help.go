package main

import (
	"embed"
	"strings"
)

// The long help of each command (its description and examples) is prose, kept in help/NAME.txt
// (NAME is the command path joined by '-', e.g. install-to-filesystem) rather than in the code;
// TestEveryCommandHasHelp checks that each command has one and each file a command.
//
//go:embed help/*.txt
var helpFiles embed.FS

// help returns the long help of the command name, or "" if it has none.
func help(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}
