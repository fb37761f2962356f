package audit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/rs/zerolog"
	"github.com/willibrandon/mtlog"
	audit "github.com/willibrandon/mtlog-audit"
	lograudit "github.com/willibrandon/mtlog-audit/adapters/logr"
	slogaudit "github.com/willibrandon/mtlog-audit/adapters/slog"
	zapaudit "github.com/willibrandon/mtlog-audit/adapters/zap"
	zerologaudit "github.com/willibrandon/mtlog-audit/adapters/zerolog"
	"github.com/willibrandon/mtlog-audit/protect"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

var cardSeed = flag.Uint64("cards.seed", 0, "seed of TestCardsNeverReachDisk (0: a fixed seed)")

// testPAN returns a random card number of 13 to 19 digits that passes the
// Luhn check.
func testPAN(r *rand.Rand) string {
	n := 13 + r.IntN(7)
	d := make([]byte, n)
	d[0] = byte('3' + r.IntN(4)) // 3 to 6, as real brands
	for i := 1; i < n-1; i++ {
		d[i] = byte('0' + r.IntN(10))
	}
	for c := byte('0'); c <= '9'; c++ {
		d[n-1] = c
		if luhnValid(d) {
			break
		}
	}
	return string(d)
}

func luhnValid(d []byte) bool {
	sum := 0
	for i := range d {
		x := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			if x *= 2; x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	return sum%10 == 0
}

// shape writes pan in one of the shapes a person or a program writes it:
// whole, in groups of four, or in random groups, separated by spaces or
// dashes.
func shape(r *rand.Rand, pan string) string {
	switch r.IntN(4) {
	case 0:
		return pan
	case 1, 2:
		sep := []string{" ", "-", " - "}[r.IntN(3)]
		var b strings.Builder
		for i := 0; i < len(pan); i += 4 {
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString(pan[i:min(i+4, len(pan))])
		}
		return b.String()
	default:
		var b strings.Builder
		for i := 0; i < len(pan); {
			n := 1 + r.IntN(6)
			if i > 0 {
				b.WriteString([]string{" ", "-"}[r.IntN(2)])
			}
			b.WriteString(pan[i:min(i+n, len(pan))])
			i += n
		}
		return b.String()
	}
}

// embed puts s in text: alone, or between words (never touching another
// digit, as the scanner's contract requires).
func embed(r *rand.Rand, s string) string {
	pre := []string{"", "card ", "pan=", "x", "\"", "(", "paid with: ", "é "}[r.IntN(8)]
	post := []string{"", " ok", ".", "\"", ")", "/exp 12/29", "\n"}[r.IntN(7)]
	return pre + s + post
}

// unwhiten returns the bytes of a log segment after its first sector
// un-whitened (docs/wal-format.md, "whitened"), so that a scan sees the
// records' payloads as they are before whitening, which is not encryption.
// Bytes that were not whitened (batch headers) come out scrambled; the scan
// reads them as written.
func unwhiten(seg []byte) []byte {
	const sector = 512
	if len(seg) <= sector {
		return nil
	}
	salt := binary.LittleEndian.Uint64(seg[32:])
	mix := func(z uint64) uint64 {
		z += 0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	out := make([]byte, 0, len(seg)-sector)
	for o := sector; o+8 <= len(seg); o += 8 {
		k := mix(salt ^ (uint64(o/8) * 0x9e3779b97f4a7c15))
		out = binary.LittleEndian.AppendUint64(out, binary.LittleEndian.Uint64(seg[o:])^k)
	}
	return out
}

type cardStringer struct{ s string }

func (c cardStringer) String() string { return c.s }

type cardStruct struct {
	Number string
	Note   string `json:"note"`
}

// TestCardsNeverReachDisk is the property test of the card stage: card
// numbers in random shapes and places, in every kind of field, written
// through Sink.Write, mtlog (Emit) and every adapter, never reach any file
// of the log or of its mirror, with or without separators.
func TestCardsNeverReachDisk(t *testing.T) {
	seed := *cardSeed
	if seed == 0 {
		seed = 18
	}
	t.Logf("seed %d (rerun with -cards.seed=%d)", seed, seed)
	for _, mode := range []string{"tokens", "truncation"} {
		t.Run(mode, func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, uint64(len(mode))))
			dir, mirror := t.TempDir(), t.TempDir()
			card := audit.WithCardTruncation()
			if mode == "tokens" {
				card = audit.WithCardTokens("k1", bytes.Repeat([]byte{7}, 32))
			}
			sink, err := audit.New(audit.WithWAL(dir), audit.WithRedundancy(mirror), card)
			if err != nil {
				t.Fatal(err)
			}
			var pans []string
			next := func() string {
				p := testPAN(r)
				pans = append(pans, p)
				return embed(r, shape(r, p))
			}
			ctx := context.Background()
			const rounds = 40
			for i := range rounds {
				// Sink.Write: every kind of field.
				n, _ := strconv.ParseUint(testPAN(r), 10, 64)
				pans = append(pans, strconv.FormatUint(n, 10))
				ev := &audit.Event{
					Level:           audit.LevelInformation,
					MessageTemplate: "payment " + next(),
					Message:         "paid " + next(),
					Exception:       fmt.Errorf("declined: %s", next()),
					Properties: map[string]any{
						"Card":   next(),
						next():   "as a key",
						"Int":    n,
						"Bytes":  []byte(next()),
						"Error":  errors.New(next()),
						"String": cardStringer{next()},
						"Struct": cardStruct{Number: next(), Note: next()},
						"Ptr":    &cardStruct{Number: next()},
						"JSON":   json.RawMessage(`{"n":"` + next() + `"}`),
						"Nested": map[string]any{
							"list": []any{next(), map[string]any{next(): []any{next()}}},
						},
						"Typed": map[string][]string{"a": {next()}},
					},
				}
				if _, err := sink.Write(ctx, ev); err != nil {
					t.Fatal(err)
				}
				// mtlog's Emit.
				logger := mtlog.New(mtlog.WithSink(sink))
				logger.Information("Order {Order} card {Card} meta {@Meta}", i, next(), cardStruct{Number: next()})
				// The adapters.
				sl, err := slogaudit.New(sink, nil)
				if err != nil {
					t.Fatal(err)
				}
				slog.New(sl).Info("slog "+next(), "card", next(), slog.Group("g", slog.String(next(), next())))
				zl, err := zerologaudit.New(sink)
				if err != nil {
					t.Fatal(err)
				}
				pstr := testPAN(r)
				for len(pstr) > 18 { // fits in an int64
					pstr = testPAN(r)
				}
				pn, _ := strconv.ParseInt(pstr, 10, 64)
				zlog := zerolog.New(zl)
				zlog.Info().Str("card", next()).Int64("n", pn).Msg("zerolog " + next())
				pans = append(pans, strconv.FormatInt(pn, 10))
				zc, err := zapaudit.NewCore(sink, zapcore.DebugLevel)
				if err != nil {
					t.Fatal(err)
				}
				zap.New(zc).Info("zap "+next(), zap.String("card", next()), zap.Any("m", map[string]any{"c": next()}))
				var lg logr.Logger
				if lg, err = lograudit.New(sink); err != nil {
					t.Fatal(err)
				}
				lg.Info("logr "+next(), "card", next())
			}
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			files, segments := 0, 0
			for _, root := range []string{dir, mirror} {
				err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					b, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					files++
					if strings.HasSuffix(path, ".wal") {
						b = append(b, unwhiten(b)...) // the bytes as written, and the records
						segments++
					}
					flat := strings.NewReplacer(" ", "", "-", "").Replace(string(b))
					for _, p := range pans {
						if bytes.Contains(b, []byte(p)) || strings.Contains(flat, p) {
							t.Errorf("card number %s found in %s (seed %d)", p, path, seed)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if segments < 2 {
				t.Fatalf("scanned %d files, %d segments; want the log and its mirror", files, segments)
			}
			// Every event was written, and none holds a number that is a card
			// number (integers are stored as varints, not text).
			got := 0
			for ev, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
				if err != nil {
					t.Fatal(err)
				}
				got++
				for _, p := range pans {
					if strings.Contains(fmt.Sprint(ev.Properties), p) || strings.Contains(ev.Message, p) {
						t.Errorf("card number %s in a replayed event", p)
					}
				}
			}
			if want := rounds * 6; got != want {
				t.Errorf("replayed %d events, want %d", got, want)
			}
		})
	}
}

// TestSensitiveAuthenticationDataDropped: CVV, PIN and track properties
// are removed before the event is written, even in nested maps, their
// names are recorded, and their text leaves the rendered message.
func TestSensitiveAuthenticationDataDropped(t *testing.T) {
	dir := t.TempDir()
	sink, err := audit.New(audit.WithWAL(dir), audit.WithCardTokens("k1", bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	logger := mtlog.New(mtlog.WithSink(sink))
	logger.Information("Charge {Amount} with cvv {CVV} pin {PIN}", 10, "9137", "8642")
	if _, err := sink.Write(context.Background(), &audit.Event{Message: "m", Properties: map[string]any{
		"Card": map[string]any{"cvc2": "9137", "Track2": ";4111111111111111=25121011234567?"},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	var removed []any
	for ev, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprint(ev.Message, ev.Properties); strings.Contains(s, "9137") || strings.Contains(s, "8642") || strings.Contains(s, "2512101") {
			t.Errorf("sensitive authentication data left: %s", s)
		}
		removed = append(removed, ev.Properties[protect.RemovedProperty].([]any)...)
	}
	if got, want := fmt.Sprint(removed), "[CVV PIN Track2 cvc2]"; got != want {
		t.Errorf("removed names %s, want %s", got, want)
	}
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && (bytes.Contains(b, []byte("9137")) || bytes.Contains(b, []byte("8642"))) {
			t.Errorf("%s holds a CVV or PIN", path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestMaskSensitive: WithMaskSensitive masks and WithDropFields removes
// named properties at any depth, through Emit.
func TestMaskSensitive(t *testing.T) {
	dir := t.TempDir()
	sink, err := audit.New(audit.WithWAL(dir), audit.WithMaskSensitive("password"), audit.WithDropFields("ssn", "card_number"))
	if err != nil {
		t.Fatal(err)
	}
	logger := mtlog.New(mtlog.WithSink(sink))
	logger.Information("User {User} set password {Password}", map[string]any{"Name": "ann", "SSN": "078-05-1120", "CardNumber": "x"}, "hunter2-secret")
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	for ev, err := range audit.Replay(context.Background(), dir, time.Time{}, time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.Properties["Password"]; got != protect.Masked {
			t.Errorf("Password = %v, want %s", got, protect.Masked)
		}
		if s := fmt.Sprint(ev.Message, ev.Properties); strings.Contains(s, "hunter2-secret") || strings.Contains(s, "078-05-1120") {
			t.Errorf("masked value left: %s", s)
		}
		if got, want := fmt.Sprint(ev.Properties[protect.RemovedProperty]), "[CardNumber SSN]"; got != want {
			t.Errorf("removed %s, want %s", got, want)
		}
	}
}

func TestCardOptionsRefused(t *testing.T) {
	for name, opts := range map[string][]audit.Option{
		"both forms": {audit.WithCardTruncation(), audit.WithCardTokens("k", bytes.Repeat([]byte{1}, 32))},
		"short key":  {audit.WithCardTokens("k", []byte("short"))},
		"bad key ID": {audit.WithCardTokens("a:b", bytes.Repeat([]byte{1}, 32))},
		"no fields":  {audit.WithMaskSensitive()},
		"empty name": {audit.WithDropFields("")},
	} {
		_, err := audit.New(append(opts, audit.WithWAL(t.TempDir()))...)
		if !errors.Is(err, audit.ErrInvalidOption) {
			t.Errorf("%s: New = %v, want ErrInvalidOption", name, err)
		}
	}
}
