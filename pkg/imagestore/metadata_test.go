package imagestore

import (
	"strings"
	"testing"
)

// MetadataJSON re-serializes as ostree-ext does: OCI field order, unknown fields dropped, compact,
// no HTML escaping, no final newline.
func TestMetadataJSON(t *testing.T) {
	const cfgDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	st := &ImageState{
		RawManifest: []byte(`{"layers": [], "config": {"size": 2, "digest": "` + cfgDigest + `", "mediaType": "application/vnd.oci.image.config.v1+json"},
			"x-unknown": 1, "mediaType": "application/vnd.oci.image.manifest.v1+json", "schemaVersion": 2, "annotations": {"b": "<&>", "a": "1"}}`),
		RawConfig: []byte(`{"rootfs": {"type": "layers", "diff_ids": []}, "os": "linux", "architecture": "amd64"}`),
	}
	for _, tc := range []struct {
		name   string
		config bool
		want   string
	}{
		{"manifest", false, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfgDigest + `","size":2},"layers":[],"annotations":{"a":"1","b":"<&>"}}`},
		{"config", true, `{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MetadataJSON(st, tc.config)
			if err != nil || string(got) != tc.want {
				t.Errorf("MetadataJSON = %s, %v\nwant %s", got, err, tc.want)
			}
		})
	}
	if _, err := MetadataJSON(&ImageState{}, false); err == nil || !strings.Contains(err.Error(), "records no ostree.manifest") {
		t.Errorf("MetadataJSON of a commit without a manifest: %v", err)
	}
}
