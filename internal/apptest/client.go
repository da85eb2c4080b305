package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/domain"
)

// client has timeouts so a hung server fails the test instead of hanging it.
var client = &http.Client{Timeout: 30 * time.Second}

// Do sends a request to the app and returns the status and body. body may be
// nil, []byte/string (sent as is) or any value (sent as JSON).
func (a *App) Do(t testing.TB, method, path string, body any, header http.Header) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(j)
	}
	target := path
	if len(path) > 0 && path[0] == '/' {
		target = a.URL + path
	}
	req, err := http.NewRequest(method, target, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// Admin is Do with the admin bearer token.
func (a *App) Admin(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	return a.Do(t, method, path, body, http.Header{"Authorization": {"Bearer " + a.AdminToken}})
}

// CreateIntegration creates an integration through the API.
func (a *App) CreateIntegration(t testing.TB, name string) domain.Integration {
	t.Helper()
	status, body := a.Admin(t, http.MethodPost, "/v1/integrations", map[string]string{"name": name})
	require.Equal(t, http.StatusCreated, status, string(body))
	var in domain.Integration
	require.NoError(t, json.Unmarshal(body, &in))
	return in
}

// GenerateURL makes a webhook URL through the API.
func (a *App) GenerateURL(t testing.TB, integrationID int64) admin.GeneratedURL {
	t.Helper()
	status, body := a.Admin(t, http.MethodPost, "/v1/integrations/"+strconv.FormatInt(integrationID, 10)+"/webhook-urls", nil)
	require.Equal(t, http.StatusCreated, status, string(body))
	var u admin.GeneratedURL
	require.NoError(t, json.Unmarshal(body, &u))
	return u
}

// Setup creates an integration and one URL for it.
func (a *App) Setup(t testing.TB, name string) (domain.Integration, admin.GeneratedURL) {
	t.Helper()
	in := a.CreateIntegration(t, name)
	return in, a.GenerateURL(t, in.ID)
}

// Post sends a webhook body to a full URL.
func (a *App) Post(t testing.TB, url string, body any) (int, []byte) {
	t.Helper()
	return a.Do(t, http.MethodPost, url, body, nil)
}

// DB opens a connection to the app's database for checking what was written.
func (a *App) DB(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, a.DatabaseURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Count returns SELECT count(*) FROM the given (already quoted) relation.
func Count(t testing.TB, conn *pgx.Conn, relation string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM "+relation).Scan(&n))
	return n
}
