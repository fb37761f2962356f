package audit

import (
	"strings"

	"github.com/willibrandon/mtlog-audit/protect"
)

// WithCardTokens replaces every card number (PAN) in every event, in its
// messages, property names and values at any depth, with a keyed token
// "pan:tok:<keyID>:<22 base64url characters>" (HMAC-SHA256 under key; see
// protect.Cards and docs/protection.md), before the event is encoded, and
// removes sensitive authentication data (see WithCardTruncation). The same
// number under the same key always gives the same token. key must be at
// least 32 random bytes and must not be stored with the log: whoever holds
// it can test a guessed number against a token. keyID names it in every
// token (letters, digits, '.', '_', '-'), so that tokens made after a key
// rotation are told apart. It excludes WithCardTruncation. Card scanning
// is off without either option.
func WithCardTokens(keyID string, key []byte) Option {
	return func(c *config) {
		c.cards.options = append(c.cards.options, "WithCardTokens")
		st, err := protect.NewCards(protect.CardPolicy{KeyID: keyID, Key: key})
		if err != nil {
			c.optionError("WithCardTokens(%q, %d-byte key): %v", keyID, len(key), err)
			return
		}
		c.stages[stageDrop] = protect.NewSADFilter()
		c.stages[stageCards] = st
	}
}

// WithCardTruncation replaces every card number (PAN) in every event, as
// WithCardTokens does, with its first six and last four digits, such as
// "411111******1111" (fewer first digits for numbers under 16 digits, so
// that at least six are hidden).
//
// Both card options also remove sensitive authentication data (PCI DSS
// 3.3.1), which must not be kept even encrypted: properties and map keys
// named like CVV, CVC, CVV2, CVC2, CID, CAV2, PIN, PINBlock, Track1,
// Track2 or TrackData (see protect.NewSADFilter) are deleted, their names
// listed in the property protect.RemovedProperty, and their text replaced
// in the rendered message; magnetic-stripe track data found in text is
// replaced by protect.TrackDataRemoved. It excludes WithCardTokens.
func WithCardTruncation() Option {
	return func(c *config) {
		c.cards.options = append(c.cards.options, "WithCardTruncation")
		st, err := protect.NewCards(protect.CardPolicy{Truncate: true})
		if err != nil { // unreachable: the policy is valid
			c.optionError("WithCardTruncation: %v", err)
			return
		}
		c.stages[stageDrop] = protect.NewSADFilter()
		c.stages[stageCards] = st
	}
}

// WithMaskSensitive replaces the value of every property named in fields,
// and of every map key so named at any depth, with protect.Masked, and
// the value's text in the rendered message with protect.Removed. Names
// match case-insensitively and ignoring '_', '-', '.' and spaces
// ("card_number" masks "CardNumber"). The key stays, so a reader sees that
// a value was there. Given several times, the lists add up.
func WithMaskSensitive(fields ...string) Option {
	return func(c *config) {
		c.cards.mask = append(c.cards.mask, fields...)
		c.maskOption("WithMaskSensitive", fields)
	}
}

// WithDropFields removes every property named in fields, and every map key
// so named at any depth, as WithMaskSensitive masks them (the names match
// the same way), and lists the removed names in the property
// protect.RemovedProperty. Given several times, the lists add up.
func WithDropFields(fields ...string) Option {
	return func(c *config) {
		c.cards.drop = append(c.cards.drop, fields...)
		c.maskOption("WithDropFields", fields)
	}
}

// maskOption checks the fields of a masking option and sets the mask
// stage from every masking option given so far.
func (c *config) maskOption(name string, fields []string) {
	if len(fields) == 0 {
		c.optionError("%s(): name at least one property, such as \"password\"", name)
		return
	}
	st, err := protect.NewMask(c.cards.mask, c.cards.drop)
	if err != nil {
		c.optionError("%s(%s): %v", name, strings.Join(fields, ", "), err)
		return
	}
	c.stages[stageMask] = st
}

// cardConfig holds what the card and masking options were given.
type cardConfig struct {
	options    []string // the card options given, to refuse two
	mask, drop []string // WithMaskSensitive and WithDropFields names
}

// checkCards reports the card options that exclude each other.
func (c *config) checkCards() {
	if len(c.cards.options) > 1 {
		c.optionError("%s: pick one form of card number (tokens or truncation), never both", strings.Join(c.cards.options, " and "))
	}
}
