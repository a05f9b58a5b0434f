package ostreecontainer

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EscapeRef turns an arbitrary string (an image reference, a layer digest) into a valid ref
// component, as ostree-ext's refescape does: ASCII letters and digits pass; '/' passes between
// two of them; '-' passes; '_' becomes "__"; anything else becomes "_XX_" with XX the code
// point in uppercase hex. "sha256:2c26…" becomes "sha256_3A_2c26…". One difference, found by
// fuzzing: a leading '-' is escaped too, since a ref component may not start with one (no digest
// or image reference does).
func EscapeRef(s string) string {
	var b strings.Builder
	runes := []rune(s)
	for i, r := range runes {
		switch {
		case isAlnum(r), r == '-' && i > 0:
			b.WriteRune(r)
		case r == '_':
			b.WriteString("__")
		case r == '/' && i > 0 && i < len(runes)-1 && isAlnum(runes[i-1]) && isAlnum(runes[i+1]):
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "_%X_", r)
		}
	}
	return b.String()
}

// UnescapeRef reverses EscapeRef.
func UnescapeRef(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '_' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '_' {
			b.WriteByte('_')
			i += 2
			continue
		}
		end := strings.IndexByte(s[i+1:], '_')
		if end <= 0 {
			return "", fmt.Errorf("unescaping ref %q: unterminated escape at %d", s, i)
		}
		code, err := strconv.ParseUint(s[i+1:i+1+end], 16, 32)
		if err != nil || !utf8.ValidRune(rune(code)) {
			return "", fmt.Errorf("unescaping ref %q: bad escape %q", s, s[i:i+2+end])
		}
		b.WriteRune(rune(code))
		i += end + 2
	}
	return b.String(), nil
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
