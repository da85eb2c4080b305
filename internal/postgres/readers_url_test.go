package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Ensure a reader's URL keeps where the server is and how to trust it, and
// nothing of the loader's own: user, password, client certificate, session
// settings.
func TestReaderURL(t *testing.T) {
	t.Parallel()
	for loader, want := range map[string]string{
		"postgres://cio:secret@db.example.com:6432/events?sslmode=verify-full&sslrootcert=/ca.pem&sslkey=/k&application_name=x&plan_cache_mode=auto": "postgres://ana:p%40ss@db.example.com:6432/events?sslmode=verify-full&sslrootcert=%2Fca.pem",
		"postgres://postgres@/cioloader?host=/x/run&port=5433&sslmode=disable&application_name=cioloader-serve-1":                                    "postgres://ana:p%40ss@/cioloader?host=%2Fx%2Frun&port=5433&sslmode=disable",
		"postgres://cio:pw@h1:5432,h2:5433/db?target_session_attrs=read-write":                                                                       "postgres://ana:p%40ss@h1:5432,h2:5433/db?target_session_attrs=read-write",
		"host=db.example.com port=5432 dbname='my db' user=cio password='s p' sslmode=require":                                                       "postgres://ana:p%40ss@db.example.com:5432/my%20db?sslmode=require",
	} {
		got, err := ReaderURL(loader, "ana", "p@ss")
		require.NoError(t, err)
		require.Equal(t, want, got, loader)
	}
	_, err := ReaderURL("postgres://cio:secret@db:x/y", "ana", "p")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret")
}
