package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cioloader/cioloader/migrations"
)

// migrationsTable is where golang-migrate records the control schema's version.
const migrationsTable = "cioloader_schema_migrations"

// Migrator applies the embedded control-schema migrations.
type Migrator struct {
	m *migrate.Migrate
}

// NewMigrator opens a golang-migrate instance on databaseURL.
// Errors never contain the URL (it may hold a password).
func NewMigrator(databaseURL string) (*Migrator, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: open embedded files: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("migrations: parse database url: %s", sanitize(err))
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	db := stdlib.OpenDB(*cfg.ConnConfig)
	drv, err := pgx.WithInstance(db, &pgx.Config{MigrationsTable: migrationsTable})
	if err != nil {
		_ = db.Close()
		if isReadOnly(err) {
			return nil, fmt.Errorf("migrations: %w", errReadOnly)
		}
		return nil, fmt.Errorf("migrations: connect: %s", sanitize(err))
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrations: %s", sanitize(err))
	}
	return &Migrator{m: m}, nil
}

// Up applies every pending migration. No change is not an error.
func (mg *Migrator) Up() error {
	if err := mg.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		if isReadOnly(err) {
			return fmt.Errorf("migrations: up: %w", errReadOnly)
		}
		return fmt.Errorf("migrations: up: %s", sanitize(err))
	}
	return nil
}

// Down rolls back n migrations; more than are applied is refused before
// anything is rolled back.
func (mg *Migrator) Down(n int) error {
	v, _, err := mg.Version()
	if err != nil {
		return err
	}
	if applied := AppliedMigrations(v); n > applied {
		return fmt.Errorf("cannot roll back %d migrations: %d applied (control schema version %d)", n, applied, v)
	}
	if err := mg.m.Steps(-n); err != nil {
		return fmt.Errorf("migrations: down %d: %s", n, sanitize(err))
	}
	return nil
}

// Version reports the applied version and whether a failed migration left it dirty.
func (mg *Migrator) Version() (uint, bool, error) {
	v, dirty, err := mg.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("migrations: version: %s", sanitize(err))
	}
	return v, dirty, nil
}

// Latest is the highest migration version embedded in this binary.
func Latest() (uint, error) {
	entries, err := migrations.FS.ReadDir(".")
	if err != nil {
		return 0, err
	}
	var latest uint
	for _, e := range entries {
		var v uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}

// Latest is the highest migration version embedded in this binary.
func (mg *Migrator) Latest() (uint, error) { return Latest() }

// AppliedMigrations counts the embedded migrations up to version v.
func AppliedMigrations(v uint) int {
	entries, _ := migrations.FS.ReadDir(".")
	n := 0
	for _, e := range entries {
		var ev uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &ev); err == nil && ev <= v && strings.HasSuffix(e.Name(), ".up.sql") {
			n++
		}
	}
	return n
}

// Close releases the migrator's connection.
func (mg *Migrator) Close() error {
	srcErr, dbErr := mg.m.Close()
	return errors.Join(srcErr, dbErr)
}

// MigrateUp opens a migrator, applies every pending migration and closes it.
// ctx bounds nothing inside golang-migrate (it has no context API) but is
// checked first so a cancelled start does not touch the database.
func MigrateUp(ctx context.Context, databaseURL string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mg, err := NewMigrator(databaseURL)
	if err != nil {
		return err
	}
	defer mg.Close()
	return mg.Up()
}

// sanitize renders err without any URL-looking password it may carry.
func sanitize(err error) string {
	msg := err.Error()
	for _, field := range strings.Fields(msg) {
		u, perr := url.Parse(strings.Trim(field, `"'`))
		if perr != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			msg = strings.ReplaceAll(msg, field, u.Redacted())
		}
	}
	return msg
}
