package updateagent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// AppID is Zincati's application id for the node id (systemd's app-specific machine id).
const AppID = "de35106b6ec24688b63afddaa156679b"

// AppSpecificID is systemd's sd_id128_get_machine_app_specific: HMAC-SHA256 keyed with the 16
// bytes of machineID over the 16 bytes of appID, its first 16 bytes made a version 4 UUID,
// as 32 lowercase hex digits. Both ids are 32 hex digits (as in /etc/machine-id).
func AppSpecificID(machineID, appID string) (string, error) {
	key, err := id128(machineID)
	if err != nil {
		return "", fmt.Errorf("machine id: %w", err)
	}
	app, err := id128(appID)
	if err != nil {
		return "", fmt.Errorf("app id: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(app)
	sum := mac.Sum(nil)[:16]
	sum[6] = sum[6]&0x0f | 0x40
	sum[8] = sum[8]&0x3f | 0x80
	return hex.EncodeToString(sum), nil
}

func id128(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 16 {
		return nil, fmt.Errorf("%q is not 32 hex digits", strings.TrimSpace(s))
	}
	return b, nil
}

// NodeID is the host's node id for FleetLock and the update graph: the app-specific id
// (AppSpecificID with AppID) of root's /etc/machine-id, never the machine id itself.
func NodeID(root string) (string, error) {
	p := filepath.Join(root, "etc/machine-id")
	data, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("the node id: %w (or set [identity] node_uuid)", err)
	}
	id, err := AppSpecificID(string(data), AppID)
	if err != nil {
		return "", fmt.Errorf("the node id from %s: %w", p, err)
	}
	return id, nil
}
