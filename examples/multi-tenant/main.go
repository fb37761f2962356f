// Command multi-tenant keeps one audit log per tenant: each tenant's events
// go to its own sink, in its own directory, signed with its own key, so a
// tenant's log can be handed to that tenant's auditor, verified with that
// tenant's public key, retained and deleted on that tenant's schedule,
// without exposing another tenant's events. Run it from the repository
// root:
//
//	go run ./examples/multi-tenant
//
// Each run writes to a new temporary directory unless -dir is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
)

func main() {
	dir := flag.String("dir", "", "directory for the tenants' logs (default: a new temporary directory)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "multi-tenant")
		if err != nil {
			fmt.Fprintln(os.Stderr, "multi-tenant:", err)
			os.Exit(1)
		}
		*dir = d
	}
	if err := run(*dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "multi-tenant:", err)
		os.Exit(1)
	}
}

// tenants routes each tenant's events to that tenant's sink.
type tenants struct {
	root  string
	sinks map[string]*audit.Sink
	pubs  map[string]string
}

// open opens a sink per tenant, each with its own directory and key.
func open(root string, names ...string) (*tenants, error) {
	t := &tenants{root: root, sinks: map[string]*audit.Sink{}, pubs: map[string]string{}}
	for _, name := range names {
		// In production the key comes from a secrets store, per tenant.
		skey, vkey, err := integrity.GenerateKey(name + ".example.com/audit")
		if err != nil {
			return nil, errors.Join(err, t.close())
		}
		s, err := audit.New(audit.WithWAL(filepath.Join(root, name)), audit.WithSigningKey(skey))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("tenant %s: %w", name, err), t.close())
		}
		t.sinks[name], t.pubs[name] = s, vkey
	}
	return t, nil
}

// write records ev in tenant's log; an unknown tenant is an error, never
// another tenant's log.
func (t *tenants) write(ctx context.Context, tenant, actor, action string) (audit.Receipt, error) {
	s, ok := t.sinks[tenant]
	if !ok {
		return audit.Receipt{}, fmt.Errorf("unknown tenant %q: open its log first", tenant)
	}
	return s.Write(ctx, &audit.Event{
		Timestamp:       time.Now(),
		Level:           audit.LevelInformation,
		MessageTemplate: "{Actor} did {Action}",
		Message:         fmt.Sprintf("%q did %q", actor, action),
		Properties:      map[string]any{"Tenant": tenant, "Actor": actor, "Action": action},
	})
}

func (t *tenants) close() error {
	var errs []error
	for name, s := range t.sinks {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func run(root string, out io.Writer) error {
	ctx := context.Background()
	t, err := open(root, "acme", "globex")
	if err != nil {
		return err
	}
	for _, w := range []struct{ tenant, actor, action string }{
		{"acme", "alice", "login"}, {"globex", "bob", "login"}, {"acme", "alice", "export-invoices"},
		{"globex", "bob", "delete-user"}, {"acme", "carol", "logout"},
	} {
		rec, err := t.write(ctx, w.tenant, w.actor, w.action)
		if err != nil {
			return errors.Join(err, t.close())
		}
		fmt.Fprintf(out, "%s #%d: %s %s\n", w.tenant, rec.Seq, w.actor, w.action)
	}
	if _, err := t.write(ctx, "initech", "eve", "login"); err != nil {
		fmt.Fprintln(out, "refused:", err)
	}
	if err := t.close(); err != nil {
		return err
	}

	names := slices.Sorted(func(yield func(string) bool) {
		for n := range t.sinks {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		dir := filepath.Join(root, name)
		var actions []string
		for ev, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
			if err != nil {
				return fmt.Errorf("tenant %s: replay: %w", name, err)
			}
			if ev.Properties["Tenant"] != name {
				return fmt.Errorf("tenant %s's log holds an event of tenant %v", name, ev.Properties["Tenant"])
			}
			actions = append(actions, fmt.Sprint(ev.Properties["Actor"], " ", ev.Properties["Action"]))
		}
		own, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(t.pubs[name]))
		if err != nil {
			return fmt.Errorf("tenant %s: verify: %w", name, err)
		}
		fmt.Fprintf(out, "%s: %d events %v; verified with its own key: %v, %d signed checkpoint(s)\n", name, len(actions), actions, own.OK, own.Checkpoints)
		// Another tenant's key signs none of this log's checkpoints.
		other := t.pubs[names[(slices.Index(names, name)+1)%len(names)]]
		if _, err := audit.Verify(ctx, dir, audit.WithTrustedKeys(other)); err != nil {
			fmt.Fprintf(out, "%s: with another tenant's key: refused\n", name)
		} else {
			return fmt.Errorf("tenant %s: verified with another tenant's key", name)
		}
	}
	return nil
}
