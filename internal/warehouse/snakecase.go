package warehouse

import "strings"

// snakeCase is lodash's snake_case as RudderStack runs it on names that hold only
// ASCII letters, digits and "_" (what alphanumericRuns leaves), with its
// "numbers" word set: at each position the first of these word shapes that
// matches is taken, lower-cased, and the words are joined by "_"; a byte no shape
// matches is skipped.
//
//  1. lower letters then digits, optionally after one capital ("Abc123")
//  2. capitals then digits ("ABC123")
//  3. digits then lower letters, optionally after one capital ("123Abc")
//  4. digits then capitals ("123ABC")
//  5. lower letters, optionally after one capital, followed by a separator, a
//     capital or the end
//  6. capitals followed by a separator, the end, or a capital that starts a
//     lower-case word ("XMLHttp" → "XML", "Http")
//  7. lower letters, optionally after one capital
//  8. capitals
//  9. digits
//
// (lodash's ordinal shapes, "1st", come after 3 and 4, which already match
// every digit run followed by a letter.)
func snakeCase(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	for p := 0; p < len(s); {
		end := wordEnd(s, p)
		if end == p {
			p++
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('_')
		}
		b.WriteString(strings.ToLower(s[p:end]))
		p = end
	}
	return b.String()
}

// wordEnd is the end of the word starting at p, or p when none does.
func wordEnd(s string, p int) int {
	shapes := [...]func(string, int) int{
		lowerDigits, upperDigits, digitsLower, digitsUpper, lowerWordBounded, upperWordBounded,
		lowerWord, upperRun, digitRun,
	}
	for _, shape := range shapes {
		if e := shape(s, p); e > p {
			return e
		}
	}
	return p
}

func run(s string, i int, class func(byte) bool) int {
	for i < len(s) && class(s[i]) {
		i++
	}
	return i
}

// lowerWord: [A-Z]?[a-z]+.
func lowerWord(s string, p int) int {
	i := p
	if i+1 < len(s) && isUpper(s[i]) && isLower(s[i+1]) {
		i++
	}
	if e := run(s, i, isLower); e > i {
		return e
	}
	return p
}

func upperRun(s string, p int) int { return run(s, p, isUpper) }
func digitRun(s string, p int) int { return run(s, p, isDigit) }

// followedBy is e when a run ending at e > p is followed by what class accepts.
func followedBy(s string, p, e int, class func(byte) bool) int {
	if e == p {
		return p
	}
	if d := run(s, e, class); d > e {
		return d
	}
	return p
}

func lowerDigits(s string, p int) int { return followedBy(s, p, lowerWord(s, p), isDigit) }
func upperDigits(s string, p int) int { return followedBy(s, p, upperRun(s, p), isDigit) }

// digitsLower: \d+[A-Z]?[a-z]+.
func digitsLower(s string, p int) int {
	d := digitRun(s, p)
	if d == p {
		return p
	}
	if e := lowerWord(s, d); e > d {
		return e
	}
	return p
}

func digitsUpper(s string, p int) int { return followedBy(s, p, digitRun(s, p), isUpper) }

// isBreak: a separator or the end (digits and letters are not breaks).
func isBreak(s string, i int) bool { return i == len(s) || !isAlnum(s[i]) }

// lowerWordBounded: [A-Z]?[a-z]+ followed by a break or a capital.
func lowerWordBounded(s string, p int) int {
	e := lowerWord(s, p)
	if e > p && (isBreak(s, e) || isUpper(s[e])) {
		return e
	}
	return p
}

// upperWordBounded: [A-Z]+ followed by a break, or by a capital then a lower
// letter (the run gives its last capital back to the next word).
func upperWordBounded(s string, p int) int {
	e := upperRun(s, p)
	switch {
	case e == p:
		return p
	case isBreak(s, e):
		return e
	case e-1 > p && isLower(s[e]):
		return e - 1
	}
	return p
}
