package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/testdb"
)

// Ensure the readers routes grant, list and revoke, with the status codes
// README's HTTP API table gives, and that the role made by "create" logs in
// with the URL shown once and reads the integration's views.
func TestReadersAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	role := testdb.RoleName(t, "bi")
	app := apptest.Start(t)
	in, u := app.Setup(t, "Readers Shop")
	status, body := app.Post(t, u.URL, `{"event_id":"e1","object_type":"email","metric":"opened","timestamp":1700000000,"data":{"identifiers":{"id":"u1"}}}`)
	require.Equal(t, http.StatusOK, status, string(body))
	path := fmt.Sprintf("/v1/integrations/%d/readers", in.ID)

	status, body = app.Admin(t, http.MethodPut, path+"/"+role, map[string]bool{"create": true})
	require.Equal(t, http.StatusCreated, status, string(body))
	var nr domain.NewReader
	require.NoError(t, json.Unmarshal(body, &nr))
	require.Equal(t, role, nr.Role)
	require.NotEmpty(t, nr.Password)
	conn, err := pgx.Connect(ctx, nr.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var customer string
	require.NoError(t, conn.QueryRow(ctx, `SELECT customer_id FROM readers_shop.events`).Scan(&customer))
	require.Equal(t, "u1", customer)

	status, body = app.Admin(t, http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var list []domain.Reader
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list, 1)
	require.Equal(t, role, list[0].Role)
	require.True(t, list[0].Complete)
	require.NotContains(t, string(body), nr.Password, "the password is shown once")

	for _, c := range []struct {
		method, path string
		body         any
		status       int
		msg          string
	}{
		{http.MethodPut, path + "/" + role, nil, http.StatusNoContent, ""},
		{http.MethodPut, path + "/" + role, `{}`, http.StatusNoContent, ""},
		{http.MethodPut, path + "/" + role, map[string]bool{"create": true}, http.StatusConflict, "already exists"},
		{http.MethodPut, path + "/Bad-Name", nil, http.StatusBadRequest, "not a plain identifier"},
		{http.MethodPut, path + "/public", nil, http.StatusBadRequest, "reserved"},
		{http.MethodPut, path + "/no_such_role_x", nil, http.StatusNotFound, "does not exist"},
		{http.MethodPut, path + "/" + role, `{"create":"yes"}`, http.StatusBadRequest, "JSON object"},
		{http.MethodPut, path + "/" + role, `{"password":"x"}`, http.StatusBadRequest, "unknown field"},
		{http.MethodPut, "/v1/integrations/999/readers/" + role, nil, http.StatusNotFound, ""},
		{http.MethodGet, "/v1/integrations/999/readers", nil, http.StatusNotFound, ""},
		{http.MethodDelete, path + "/no_such_role_x", nil, http.StatusNotFound, "does not exist"},
		{http.MethodDelete, path + "/" + role, nil, http.StatusNoContent, ""},
		{http.MethodDelete, path + "/" + role, nil, http.StatusNoContent, ""},
	} {
		status, body := app.Admin(t, c.method, c.path, c.body)
		require.Equal(t, c.status, status, "%s %s %v: %s", c.method, c.path, c.body, body)
		if c.msg != "" {
			require.Contains(t, string(body), c.msg)
		}
	}
	status, body = app.Admin(t, http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `[]`, string(body))
	_, err = conn.Exec(ctx, `SELECT * FROM readers_shop.events`)
	require.ErrorContains(t, err, "permission denied", "revoked at once, on an open connection too")

	status, _ = app.Do(t, http.MethodGet, path, nil, nil)
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = app.Do(t, http.MethodPut, path+"/"+role, nil, nil)
	require.Equal(t, http.StatusUnauthorized, status)
}
