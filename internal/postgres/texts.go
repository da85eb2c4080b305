package postgres

import "sync"

// statementTexts caches the writer's statement texts. A text depends only on
// the schema's name and the shape of the tables it writes, and a tableState
// is never changed once made (evolution and reloads swap in a new one), so
// each text is rendered once per shape instead of on every batch: rendering
// was 17-22 % of the server's CPU when each batch held one event (pprof,
// c=1). A text that depends on a table's shape is kept in that tableState
// and goes with it; only the texts that depend on the schema's name alone
// are kept here.
type statementTexts struct{ m sync.Map } // textKey → string

// textKey names one statement text.
type textKey struct {
	kind   string
	schema string
	table  *tableState // the shape the text was rendered for; nil when it depends on the schema alone
	extra  string      // anything else it depends on (a table name, a set of tables)
	single bool        // rendered for one row (see rowSource)
}

// get returns the text for k, rendering it the first time. A nil cache
// renders every time (replay, which runs once).
func (c *statementTexts) get(k textKey, render func() string) string {
	if c == nil {
		return render()
	}
	m := &c.m
	if k.table != nil {
		m, k.table = &k.table.texts, nil
	}
	if v, ok := m.Load(k); ok {
		return v.(string)
	}
	s := render()
	m.Store(k, s)
	return s
}
