package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Measurer reads sizes and times queries for the benchmark, on its own connection.
type Measurer struct{ conn *pgx.Conn }

// OpenMeasurer connects to databaseURL. Close it when done.
func OpenMeasurer(ctx context.Context, databaseURL string) (*Measurer, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: measurer: %s", sanitize(err))
	}
	return &Measurer{conn: conn}, nil
}

// Close closes the connection.
func (m *Measurer) Close(ctx context.Context) { _ = m.conn.Close(ctx) }

// TimeQuery runs sql runs times, reading every row, and returns each run's time.
func (m *Measurer) TimeQuery(ctx context.Context, sql string, runs int) ([]time.Duration, error) {
	var out []time.Duration
	for range runs {
		start := time.Now()
		rows, err := m.conn.Query(ctx, sql)
		if err != nil {
			return nil, fmt.Errorf("postgres: query: %w", err)
		}
		for rows.Next() {
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("postgres: query: %w", err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// Explain is EXPLAIN (ANALYZE, BUFFERS) of sql: the plan and where its time went
// (it runs the query once more).
func (m *Measurer) Explain(ctx context.Context, sql string) (string, error) {
	rows, err := m.conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql)
	if err != nil {
		return "", fmt.Errorf("postgres: explain: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("postgres: explain: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

// PostmasterPID is the process id of the server's postmaster (the parent of
// this connection's backend), for reading its CPU time from /proc when the
// server runs on this machine; 0 when it does not.
func (m *Measurer) PostmasterPID(ctx context.Context) (int, error) {
	var backend int
	if err := m.conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, fmt.Errorf("measure: backend pid: %w", err)
	}
	return parentPID(backend), nil
}

// parentPID reads field 4 of /proc/PID/stat; 0 when pid is not on this machine.
func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
