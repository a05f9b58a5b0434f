package sysroot

import (
	"bufio"
	"bytes"
	"strings"
)

// blsEntry is a Boot Loader Specification entry, /boot/loader.N/entries/*.conf: "key value"
// lines, in order.
type blsEntry struct {
	keys   []string
	values map[string]string
}

// parseBLS reads an entry as ostree-bootconfig-parser.c does: the key runs to the first space
// or tab, the value is the rest of the line with surrounding blanks removed; "#" lines and
// blank lines are skipped; a repeated key keeps its last value.
func parseBLS(data []byte) *blsEntry {
	e := &blsEntry{values: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(strings.ReplaceAll(line, "\t", " "), " ")
		e.set(k, strings.TrimSpace(v))
	}
	return e
}

func (e *blsEntry) get(k string) string { return e.values[k] }

func (e *blsEntry) set(k, v string) {
	if _, ok := e.values[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.values[k] = v
}

// blsKeyOrder is the order ostree_bootconfig_parser_write_at puts known keys in; other keys
// follow in the order they were set.
var blsKeyOrder = []string{"title", "version", "options", "devicetree", "linux", "initrd"}

// marshal writes "key value\n" lines, known keys first in blsKeyOrder.
func (e *blsEntry) marshal() []byte {
	var b bytes.Buffer
	done := map[string]bool{}
	write := func(k string) {
		if v, ok := e.values[k]; ok && !done[k] {
			b.WriteString(k + " " + v + "\n")
			done[k] = true
		}
	}
	for _, k := range blsKeyOrder {
		write(k)
	}
	for _, k := range e.keys {
		write(k)
	}
	return b.Bytes()
}

// osReleaseTitle returns PRETTY_NAME, else ID, of os-release fields (as libostree titles a
// boot entry); "" if neither is set.
func osReleaseTitle(fields map[string]string) string {
	if v, ok := fields["PRETTY_NAME"]; ok {
		return v
	}
	return fields["ID"]
}
