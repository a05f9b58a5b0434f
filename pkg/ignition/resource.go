package ignition

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/vincent-petithory/dataurl"
)

// maxContent is the most a file's content may hold once decompressed.
const maxContent = 64 << 20

// content decodes a resource: a data: URL (base64 or percent-encoded), checked against
// verification.hash (sha256- or sha512-, over the data before decompression, as Ignition does)
// and gunzipped for compression gzip. Parse allowed no other source.
func content(r types.Resource) ([]byte, error) {
	if r.Source == nil {
		return nil, nil
	}
	if *r.Source == "" {
		return []byte{}, nil
	}
	u, err := dataurl.DecodeString(*r.Source)
	if err != nil {
		return nil, fmt.Errorf("decoding the data: URL: %w", err)
	}
	data := u.Data
	if h := r.Verification.Hash; h != nil {
		if err := verify(data, *h); err != nil {
			return nil, err
		}
	}
	if r.Compression != nil && *r.Compression == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gunzipping: %w", err)
		}
		if data, err = io.ReadAll(io.LimitReader(zr, maxContent+1)); err != nil {
			return nil, fmt.Errorf("gunzipping: %w", err)
		}
		if len(data) > maxContent {
			return nil, fmt.Errorf("more than %d bytes once gunzipped", maxContent)
		}
	}
	return data, nil
}

// verify checks data against an Ignition hash ("sha512-HEX" or "sha256-HEX").
func verify(data []byte, want string) error {
	algo, sum, _ := strings.Cut(want, "-")
	var h hash.Hash
	switch algo {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return fmt.Errorf("verification.hash %q: use sha256- or sha512-", want)
	}
	h.Write(data)
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(sum) {
		return fmt.Errorf("verification.hash: the content's %s is %s, not %s", algo, got, sum)
	}
	return nil
}
