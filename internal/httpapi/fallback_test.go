package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
)

// Ensure a request whose values Postgres refuses (here a trigger raising a
// data exception, SQLSTATE 22023, for any row with a "poison" column) is
// answered 200 and stored raw-only: its event whole in _sdc_raw and in
// rudder_events, no columns, a problem row saying why; and that the
// requests sharing its group commit are stored as usual.
func TestIngestRefusedRequestStoredRawOnly(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Refused")
	status, body := app.Post(t, u.URL, `{"event_id":"before","metric":"sent"}`)
	require.Equal(t, http.StatusOK, status, "%s", body)
	conn := app.DB(t)
	_, err := conn.Exec(context.Background(), `
		CREATE FUNCTION refused.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF to_jsonb(NEW) ->> 'poison' IS NOT NULL THEN
				RAISE EXCEPTION 'poison is not welcome here' USING ERRCODE = '22023';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON refused.data
			FOR EACH ROW EXECUTE FUNCTION refused.refuse_poison();`)
	require.NoError(t, err)

	const n, poison = 20, 7
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"event_id":"ok-%d","metric":"sent"}`, i)
			if i == poison {
				body = `{"event_id":"poisoned","metric":"sent","poison":"yes"}`
			}
			statuses[i], _ = app.Post(t, u.URL, body)
		})
	}
	wg.Wait()
	for i, s := range statuses {
		require.Equal(t, http.StatusOK, s, "request %d", i)
	}
	require.EqualValues(t, n-1, apptest.Count(t, conn, `refused.data WHERE event_id LIKE 'ok-%' AND metric = 'sent'`))
	require.Equal(t, "<NULL>", hostileText(t, conn, "refused", "data", "poison", "poisoned"), "no columns for the refused event")
	require.Equal(t, "<NULL>", hostileText(t, conn, "refused", "data", "metric", "poisoned"))
	require.Equal(t, "yes", hostileText(t, conn, "refused", "data", "_sdc_raw->>'poison'", "poisoned"), "the event is kept whole in _sdc_raw")
	require.EqualValues(t, 1, apptest.Count(t, conn, `refused.rudder_events WHERE event_id = 'poisoned'`))
	reasons := hostileReasons(hostileRejected(t, conn, "refused"), "poisoned")
	require.True(t, hostileAnyContains(reasons, "Postgres refused this event's columns (poison is not welcome here); the event is kept in _sdc_raw only"), "%q", reasons)
}
