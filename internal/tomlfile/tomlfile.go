// Package tomlfile is the one strict TOML decoding of bootc's configuration files: a syntax or
// type error names its line, and an unknown key is an error on the line it is on.
package tomlfile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Decode decodes data, the file at path, into v. Its errors wrap invalid (the caller's
// sentinel) and read "PATH line N: ..."; known, when not empty, is added to an unknown key's
// error to say which keys there are.
func Decode(path string, data []byte, v any, invalid error, known string) error {
	md, err := toml.Decode(string(data), v)
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s line %d: %s", invalid, path, pe.Position.Line, strings.TrimPrefix(pe.Message, "toml: "))
	} else if m := typeErrRe.FindStringSubmatch(fmt.Sprint(err)); m != nil {
		return fmt.Errorf("%w: %s line %s: %s: %s", invalid, path, m[1], m[2], m[3])
	} else if err != nil {
		return fmt.Errorf("%w: %s: %v", invalid, path, err)
	}
	if extra := md.Undecoded(); len(extra) > 0 {
		k := extra[0]
		err := fmt.Errorf("%w: %s line %d: unknown key %s", invalid, path, KeyLine(data, k[len(k)-1]), k)
		if known != "" {
			err = fmt.Errorf("%w (%s)", err, known)
		}
		return err
	}
	return nil
}

// typeErrRe matches the decoder's type errors, which are no ParseError.
var typeErrRe = regexp.MustCompile(`^toml: line (\d+) \(last key "(.*)"\): (.*)$`)

// KeyLine is the line of the last assignment to key (or of a table header ending in it) in
// data; 0 if there is none.
func KeyLine(data []byte, key string) int {
	assign := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(key) + `"?\s*=`)
	header := regexp.MustCompile(`^\s*\[\[?[^\]]*\b` + regexp.QuoteMeta(key) + `\]\]?`)
	line := 0
	for i, l := range strings.Split(string(data), "\n") {
		if assign.MatchString(l) || header.MatchString(l) {
			line = i + 1
		}
	}
	return line
}
