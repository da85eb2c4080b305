package admin

import (
	"context"
	"errors"
)

// Migrations is what admin needs to run the control-schema migrations
// (postgres.Migrator).
type Migrations interface {
	Up() error
	Down(n int) error
	Version() (version uint, dirty bool, err error)
	Latest() (uint, error)
}

// MigrationStatus is where the control schema stands after an action.
type MigrationStatus struct {
	Action  string `json:"action"` // up, down or version
	Version uint   `json:"version"`
	Dirty   bool   `json:"dirty"`
	Latest  uint   `json:"latest"` // this binary's newest migration
}

// MigrateUp applies every pending control-schema migration, then creates in
// every integration's schema the tables and views a newer release adds (serve
// does the same at start).
func (s *Service) MigrateUp(ctx context.Context) (MigrationStatus, error) {
	if s.Migrations == nil {
		return MigrationStatus{}, errNoMigrations
	}
	if err := s.Migrations.Up(); err != nil {
		return MigrationStatus{}, err
	}
	if err := s.Store.EnsureIntegrationObjects(ctx); err != nil {
		return MigrationStatus{}, err
	}
	return s.migrationStatus("up")
}

// MigrateDown rolls back steps control-schema migrations.
func (s *Service) MigrateDown(steps int) (MigrationStatus, error) {
	if s.Migrations == nil {
		return MigrationStatus{}, errNoMigrations
	}
	if err := s.Migrations.Down(steps); err != nil {
		return MigrationStatus{}, err
	}
	return s.migrationStatus("down")
}

// MigrationVersion reports the control schema's version.
func (s *Service) MigrationVersion() (MigrationStatus, error) { return s.migrationStatus("version") }

func (s *Service) migrationStatus(action string) (MigrationStatus, error) {
	if s.Migrations == nil {
		return MigrationStatus{}, errNoMigrations
	}
	st := MigrationStatus{Action: action}
	var err error
	if st.Version, st.Dirty, err = s.Migrations.Version(); err != nil {
		return MigrationStatus{}, err
	}
	if st.Latest, err = s.Migrations.Latest(); err != nil {
		return MigrationStatus{}, err
	}
	return st, nil
}

// errNoMigrations is a wiring mistake: a Service without Migrations asked to migrate.
var errNoMigrations = errors.New("admin: Migrations is not configured")
