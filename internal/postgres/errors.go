package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cioloader/cioloader/internal/domain"
)

// translate maps driver errors to domain errors: "database down or busy" →
// ErrUnavailable, no rows → ErrNotFound, unique violation → ErrConflict,
// values Postgres refuses → ErrDataRefused (with Postgres's message).
// Anything else is returned unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: database: %s", domain.ErrUnavailable, unreachable(err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %w", domain.ErrConflict, err)
		case pgErr.Code == readOnlySQLState:
			return fmt.Errorf("%w: %s", domain.ErrUnavailable, errReadOnly)
		case transientSQLState(pgErr.Code):
			return fmt.Errorf("%w: database: %s", domain.ErrUnavailable, pgErr.Message)
		case dataError(pgErr.Code):
			return fmt.Errorf("%w (SQLSTATE %s)", domain.Errorf(domain.ErrDataRefused, "%s", pgErr.Message), pgErr.Code)
		}
		return err
	}
	if transientErr(err) {
		return fmt.Errorf("%w: database: %s", domain.ErrUnavailable, unreachable(err))
	}
	return err
}

// unreachable says why the database could not be used without quoting the
// driver, whose messages name the host, port, user and database (SPEC 10.11).
func unreachable(err error) string {
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &pgErr):
		return "the server refused the connection (SQLSTATE " + pgErr.Code + ")"
	case errors.Is(err, context.Canceled):
		return "the request was cancelled"
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return "no answer in time"
	case errors.As(err, &dnsErr):
		return "the host name does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is Postgres running?)"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || isConnClosed(err):
		return "the connection was lost"
	}
	return "cannot reach the server"
}

// readOnlySQLState is read_only_sql_transaction: a hot standby (or a
// primary being demoted, or default_transaction_read_only). It passes on a
// retry once the URL finds the primary again, hence 503, not 500 (SPEC 10.13).
const readOnlySQLState = "25006"

// errReadOnly says what to do about a read-only server, without naming it.
var errReadOnly = errors.New("the database is read-only (a standby?): point DATABASE_URL at the primary, " +
	"or list every host with target_session_attrs=read-write")

// isReadOnly reports whether err says the server accepts no writes: a
// statement refused with read_only_sql_transaction, or no host of a
// target_session_attrs=read-write URL accepting writes (pgconn says
// "read only connection" and has no error type for it). golang-migrate
// keeps only the text of the errors it wraps, hence the SQLSTATE in the text.
func isReadOnly(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == readOnlySQLState
	}
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "read only connection") || strings.Contains(msg, "(SQLSTATE "+readOnlySQLState+")")
}

// transientSQLState: connection exceptions (08), serialization failures and
// deadlocks (40), insufficient resources (53), operator intervention (57:
// shutdown, cancel), system errors (58).
func transientSQLState(code string) bool {
	if len(code) < 2 {
		return false
	}
	switch code[:2] {
	case "08", "40", "53", "57", "58":
		return true
	}
	return false
}

func transientErr(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		isConnClosed(err)
}

func isConnClosed(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false
	}
	// pgx reports a connection lost mid-query as "conn closed" / "unexpected EOF".
	msg := err.Error()
	for _, s := range []string{"conn closed", "closed pool", "connection reset", "broken pipe", "connection refused", "unexpected EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
