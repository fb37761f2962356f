package protect

import "math/bits"

// This file finds card numbers (primary account numbers, PANs) in text:
// runs of 13 to 19 digits, possibly split into groups by spaces or dashes,
// that pass the Luhn check. It does not allocate.

// PAN lengths, in digits (ISO/IEC 7812).
const (
	minPAN = 13
	maxPAN = 19
)

// maxSep is the longest run of separators (spaces, dashes) allowed between
// two groups of digits of one card number, as in "4111 - 1111".
const maxSep = 3

// text is what the scanner reads: strings, and the bytes of []byte values.
type text interface{ ~string | ~[]byte }

// luhn reports whether the ASCII digits d pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		x := int(d[i] - '0')
		if double {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
		double = !double
	}
	return sum%10 == 0
}

// A pan is one card number found in a text.
type pan struct {
	start, end int          // byte offsets of the first and after the last digit
	n          int          // number of digits
	digits     [maxPAN]byte // the digits as ASCII, digits[:n]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isSep(c byte) bool   { return c == ' ' || c == '-' }

// findPAN returns the first card number in s at or after byte offset from.
//
// A candidate is a sequence of digit groups, each separated from the next
// by 1 to maxSep spaces or dashes, and not touching another digit. From
// each group in order, the longest run of consecutive groups that holds 13
// to 19 digits and passes the Luhn check is a card number (leftmost, then
// longest). A single run of more than 19 digits with no separator is not
// a card number, nor part of one.
func findPAN[T text](s T, from int) (pan, bool) {
	i := from
	for {
		i = nextDigit(s, i)
		if i >= len(s) {
			return pan{}, false
		}
		// Measure the candidate that starts here: most hold few digits
		// (dates, amounts, addresses) and are skipped without more work.
		end, total := candidate(s, i)
		if total >= minPAN {
			if p, ok := pick(s, i, end); ok {
				return p, true
			}
		}
		i = end
	}
}

// nextDigit returns the offset of the first digit in s at or after i, or
// len(s). It tests eight bytes at a time.
func nextDigit[T text](s T, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// Bytes '0' to '9' become 0 to 9; a byte below 10 exists if
		// (x - 10) borrows into its high bit while x's high bit is clear.
		// The lowest flagged byte is exact (borrows only run upwards).
		x := w ^ 0x3030303030303030
		if m := (x - 10*ones) &^ x & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if isDigit(s[i]) {
			return i
		}
	}
	return i
}

// candidate returns the end of the sequence of digit groups that starts
// at the digit s[i], and the number of its digits.
func candidate[T text](s T, i int) (end, total int) {
	j := i
	for {
		st := j
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		total += j - st
		k := j
		for k < len(s) && k-j < maxSep && isSep(s[k]) {
			k++
		}
		if k == j || k >= len(s) || !isDigit(s[k]) {
			return j, total
		}
		j = k
	}
}

// pick returns the leftmost, then longest, card number made of
// consecutive digit groups of the candidate s[start:end].
func pick[T text](s T, start, end int) (pan, bool) {
	for a := start; a < end; {
		// Gather up to maxPAN digits from the group at a, noting where
		// each group ends (in digits and in bytes).
		var p pan
		var ends [maxPAN]struct{ n, off int }
		ng := 0
		j := a
		for j < end && p.n < maxPAN+1 {
			st, n := j, p.n
			for j < end && isDigit(s[j]) {
				j++
			}
			if n+j-st > maxPAN {
				break
			}
			for x := st; x < j; x++ {
				p.digits[p.n] = s[x]
				p.n++
			}
			ends[ng] = struct{ n, off int }{p.n, j}
			ng++
			for j < end && !isDigit(s[j]) {
				j++
			}
		}
		for g := ng - 1; g >= 0 && ends[g].n >= minPAN; g-- {
			if luhn(p.digits[:ends[g].n]) {
				p.start, p.end, p.n = a, ends[g].off, ends[g].n
				return p, true
			}
		}
		// Next group.
		for a < end && isDigit(s[a]) {
			a++
		}
		for a < end && !isDigit(s[a]) {
			a++
		}
	}
	return pan{}, false
}
