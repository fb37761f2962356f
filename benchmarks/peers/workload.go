package peers

import (
	"fmt"
	"regexp"
	"sort"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/internal/benchrun"
)

// Workload is the event every row writes, in the forms the libraries take.
type Workload struct {
	// Size is the nominal event size in bytes.
	Size int
	// Event is the audit event whose encoding is Size bytes
	// (benchrun.SizedEvent), written by audit.Sink.Write.
	Event *audit.Event
	// Payload is Event's encoding: the Size bytes that the byte-oriented
	// logs (reference loop, etcd, tidwall, raft-wal) append per event.
	Payload []byte
	// Template and Args are the message template and its positional
	// arguments, for loggers (mtlog); Context holds the other properties as
	// key, value pairs, attached once per writer (mtlog With, zap fields).
	Template string
	Args     []any
	Context  []any
}

var holeRE = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// NewWorkload builds the workload for events of size bytes (≥ 64).
func NewWorkload(size int) (*Workload, error) {
	ev, n, err := benchrun.SizedEvent(size)
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	payload, err := event.AppendEncode(nil, ev)
	if err != nil {
		return nil, fmt.Errorf("peers: encode event: %w", err)
	}
	if len(payload) != n {
		return nil, fmt.Errorf("peers: event encodes to %d bytes, expected %d", len(payload), n)
	}
	w := &Workload{Size: n, Event: ev, Payload: payload, Template: ev.MessageTemplate}
	inTemplate := map[string]bool{}
	for _, m := range holeRE.FindAllStringSubmatch(ev.MessageTemplate, -1) {
		inTemplate[m[1]] = true
		w.Args = append(w.Args, ev.Properties[m[1]])
	}
	keys := make([]string, 0, len(ev.Properties))
	for k := range ev.Properties {
		if !inTemplate[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.Context = append(w.Context, k, ev.Properties[k])
	}
	return w, nil
}
