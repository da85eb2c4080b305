// Package migrations holds the control-schema migrations, embedded in the binary
// and applied by golang-migrate at start and by `cioloader migrate`.
package migrations

import "embed"

// FS holds the numbered migration files (000001_name.up.sql / .down.sql).
//
//go:embed *.sql
var FS embed.FS
