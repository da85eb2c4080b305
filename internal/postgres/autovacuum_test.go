package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Ensure the tables the views read are vacuumed (rudder_events analysed) after
// 2 % of new rows, and a
// start that finds the setting in place does not ALTER the table again (it
// would wait for a running autovacuum of it).
func TestInsertOnlyTablesAutovacuumSettings(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	for table, want := range map[string]string{"event_facts": "{autovacuum_vacuum_insert_scale_factor=0.02}",
		"delivery_facts": "{autovacuum_vacuum_insert_scale_factor=0.02}", "rudder_rows": "{autovacuum_analyze_scale_factor=0.02}"} {
		require.Equal(t, want, b.scalar(t, `SELECT reloptions::text FROM pg_class WHERE oid = to_regclass($1)`, b.schema+"."+table), table)
	}
	tx, err := b.conn.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	// What a running autovacuum holds.
	_, err = tx.Exec(ctx, `LOCK TABLE `+b.schema+`.event_facts, `+b.schema+`.delivery_facts, `+b.schema+`.rudder_rows IN SHARE UPDATE EXCLUSIVE MODE`)
	require.NoError(t, err)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, b.store.EnsureIntegrationObjects(sctx), "the start waited for the tables' lock")
}
