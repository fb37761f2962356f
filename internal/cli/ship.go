package cli

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/pflag"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
	"github.com/willibrandon/mtlog-audit/backends/fs"
)

// backendOpeners open a backend from a URL, by scheme. Drivers of other
// services add their scheme here.
var backendOpeners = map[string]func(rawURL string) (backends.Backend, error){
	"file": func(u string) (backends.Backend, error) { return fs.Open(u) },
}

// openBackend opens the backend a URL names.
func openBackend(rawURL string) (backends.Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%q: %w (write file:///absolute/path)", rawURL, err)
	}
	open, ok := backendOpeners[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("%q: no driver for scheme %q in this build (file:// is built in)", rawURL, u.Scheme)
	}
	return open(rawURL)
}

// shipFlags are the flags that turn shipping on (bench).
type shipFlags struct {
	urls   []string
	quorum int
	maxAge time.Duration
	opened []backends.Backend
}

func (s *shipFlags) register(f *pflag.FlagSet) {
	f.StringArrayVar(&s.urls, "ship", nil, "ship sealed segments and checkpoints to this backend URL, such as file:///mnt/backup/audit (repeatable)")
	f.IntVar(&s.quorum, "ship-quorum", 0, "backends that must hold each object (default: all of --ship)")
	f.DurationVar(&s.maxAge, "segment-max-age", 0, "seal a segment once its first record is this old (0: by size only)")
}

// options returns the sink options the flags ask for, opening the backends.
func (s *shipFlags) options() ([]audit.Option, error) {
	var opts []audit.Option
	if s.maxAge < 0 {
		return nil, fmt.Errorf("--segment-max-age %v: pass a positive age, or 0", s.maxAge)
	}
	if s.maxAge > 0 {
		opts = append(opts, audit.WithSegmentMaxAge(s.maxAge))
	}
	if len(s.urls) == 0 {
		if s.quorum != 0 {
			return nil, errors.New("--ship-quorum needs --ship")
		}
		return opts, nil
	}
	for _, u := range s.urls {
		b, err := openBackend(u)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("--ship %w", err)
		}
		s.opened = append(s.opened, b)
	}
	q := s.quorum
	if q == 0 {
		q = len(s.opened)
	}
	return append(opts, audit.WithShipping(q, s.opened...)), nil
}

// close closes the backends options opened.
func (s *shipFlags) close() {
	for _, b := range s.opened {
		b.Close()
	}
	s.opened = nil
}
