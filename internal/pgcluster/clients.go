package pgcluster

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// OtherClients counts the client connections to the cluster other than the
// one asking and those whose application_name is appName (the caller's own,
// some of which may still be closing on the server side); -1 when it cannot
// tell, so that a caller deciding whether to stop the cluster leaves it
// running. Connections that are closing (a command that has just exited) get
// a second to go away.
func (c *Cluster) OtherClients(appName string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return -1
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(time.Second); ; time.Sleep(100 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> $1`, appName).Scan(&n); err != nil {
			return -1
		}
		if n == 0 || time.Now().After(deadline) {
			return n
		}
	}
}
