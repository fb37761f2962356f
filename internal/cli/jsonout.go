package cli

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/willibrandon/mtlog-audit/integrity"
)

// The JSON objects the commands print with --json. Every key is snake_case;
// docs/cli-json.md lists them, and testdata/golden holds an example of each.

// checkpointJSONOf is the JSON form of a checkpoint (verify's
// latest_checkpoint, checkpoint --json); note is the signed note itself,
// when given.
func checkpointJSONOf(c integrity.Checkpoint, note string) *checkpointJSON {
	j := &checkpointJSON{Origin: c.Origin, Size: c.Size, Root: base64.StdEncoding.EncodeToString(c.Root[:]), Epoch: c.Epoch, Note: note}
	if !c.Time.IsZero() {
		j.Time = c.Time.UTC().Format(time.RFC3339Nano)
	}
	return j
}

// keyJSON is what keys show --json and keys generate --json print.
type keyJSON struct {
	Name       string `json:"name"`
	KeyID      string `json:"key_id"`
	PublicKey  string `json:"public_key"`
	Private    bool   `json:"private"`               // keys show: the file holds a private key
	File       string `json:"file,omitempty"`        // keys show: the file read; generate: the private key file
	PublicFile string `json:"public_file,omitempty"` // keys generate: the public key file
}

func keyJSONOf(vkey string, private bool, file, pubFile string) keyJSON {
	parts := strings.SplitN(vkey, "+", 3)
	j := keyJSON{Name: parts[0], PublicKey: vkey, Private: private, File: file, PublicFile: pubFile}
	if len(parts) > 1 {
		j.KeyID = parts[1]
	}
	return j
}

// versionJSON is what version --json prints.
type versionJSON struct {
	Version          string `json:"version"`
	Module           string `json:"module"`
	Revision         string `json:"revision"`
	Time             string `json:"time"`
	Go               string `json:"go"`
	WALFormatVersion int    `json:"wal_format_version"`
}
