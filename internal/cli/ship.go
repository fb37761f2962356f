package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/backends"
)

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
		b, err := openBackend(context.Background(), u)
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
