package postgres

import (
	"context"
	"time"
)

// probeEvery is how often the database's health is probed for the
// cioloader_database_up gauge; probeTimeout bounds one probe (a database
// that hangs is as down as one that refuses).
const (
	probeEvery   = time.Second
	probeTimeout = 2 * time.Second
)

// probeLoop keeps cioloader_database_up current until ctx ends, so an alert
// can tell "database unreachable" from "no traffic" (ingest alone says
// nothing while Customer.io sends nothing).
func (s *Store) probeLoop(ctx context.Context) {
	if s.m == nil {
		return
	}
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		s.m.DatabaseUp.Set(upValue(s.probe(ctx)))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe runs one trivial query on a pooled connection.
func (s *Store) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, "SELECT 1")
	return err
}

func upValue(err error) float64 {
	if err != nil {
		return 0
	}
	return 1
}
