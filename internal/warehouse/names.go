package warehouse

import "strings"

// maxIdentifier is Postgres's identifier limit in bytes; RudderStack cuts
// column and table names there.
const maxIdentifier = 63

// TableName is the relation RudderStack's loader writes a track event of this name
// to ("Email Link Clicked" → email_link_clicked): the event column's value, cut to
// 63 bytes, with a leading "_" when it is a Postgres reserved word or one of the
// tables RudderStack keeps for itself (tracks, users, identifies, …). It is ""
// for a name with no letter or digit, which has no table of its own.
func TableName(event string) string {
	name := truncate(columnWords(EventValue(event)), maxIdentifier)
	if name == "" {
		return ""
	}
	name = safeName(name)
	if rudderTables[name] {
		name = "_" + name
	}
	return name
}

// EventValue is the tracks.event column's value for an event name: its words in
// snake_case ("Email Opened" → email_opened), not cut.
func EventValue(event string) string { return columnWords(event) }

// ColumnName is the column of a property or context path, given as RudderStack
// joins it: the raw keys with "_" between them, context ones after "context_"
// ("context_traits_cioId" → context_traits_cio_id). It is "" when the key has no
// letter or digit (RudderStack drops such values).
func ColumnName(joined string) string {
	name := truncate(columnWords(joined), maxIdentifier)
	if name == "" {
		return ""
	}
	return safeName(name)
}

// columnWords is RudderStack's transformColumnName without the cut: the runs of
// ASCII letters and digits joined by "_", in lodash's snake_case with numbers,
// keeping leading underscores, and "_" before a leading digit.
func columnWords(s string) string {
	joined := strings.Join(alphanumericRuns(s), "_")
	lead := len(s) - len(strings.TrimLeft(s, "_"))
	name := s[:lead] + snakeCase(joined)
	if name != "" && isDigit(name[0]) {
		name = "_" + name
	}
	return name
}

// safeName lower-cases and puts "_" before a Postgres reserved word.
func safeName(name string) string {
	name = strings.ToLower(name)
	if reservedWords[strings.ToUpper(name)] {
		name = "_" + name
	}
	return name
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// alphanumericRuns are the maximal runs of ASCII letters and digits of s.
func alphanumericRuns(s string) []string {
	var runs []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isAlnum(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			runs = append(runs, s[start:i])
			start = -1
		}
	}
	return runs
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool { return isLower(c) || isUpper(c) || isDigit(c) }

// rudderTables are the tables RudderStack's loader makes itself; an event table
// of one of these names gets a leading "_".
var rudderTables = map[string]bool{
	"tracks": true, "pages": true, "screens": true, "aliases": true, "groups": true, "accounts": true,
	"users": true, "identifies": true,
}

// reservedWords are the words RudderStack escapes in Postgres table and column
// names (its reservedkeywords list for POSTGRES).
var reservedWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AUTHORIZATION BETWEEN
		BINARY BOTH CASE CAST CHECK COLLATE COLUMN CONSTRAINT CREATE CROSS CURRENT_DATE CURRENT_ROLE
		CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DEFAULT DEFERRABLE DESC DISTINCT DO ELSE END EXCEPT
		FALSE FOR FOREIGN FREEZE FROM FULL GRANT GROUP HAVING ILIKE IN INITIALLY INNER INTERSECT INTO IS
		ISNULL JOIN LEADING LEFT LIKE LIMIT LOCALTIME LOCALTIMESTAMP NATURAL NEW NOT NOTNULL NULL OFF
		OFFSET OLD ON ONLY OR ORDER OUTER OVERLAPS PLACING PRIMARY REFERENCES RIGHT SELECT SESSION_USER
		SIMILAR SOME SYMMETRIC TABLE THEN TO TRAILING TRUE UNION UNIQUE USER USING VERBOSE WHEN WHERE`) {
		m[w] = true
	}
	return m
}()
