package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/facts"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

// factsEdgeBodies are bodies where Go and Postgres could disagree: non-string
// ids (numbers in every notation, booleans, objects with unsorted keys and
// escapes, arrays), legacy event_types, timestamps at and past the years 1 and
// 9999, fractions that round to the microsecond, recipients of both shapes.
var factsEdgeBodies = []string{
	`{"event_id":"a","object_type":"email","metric":"opened","timestamp":1700000000,"data":{"identifiers":{"id":42,"email":"A@x.io"},"delivery_id":"d1","campaign_id":1e2}}`,
	`{"event_id":"b","event_type":"email_opened","timestamp":1700000000.1234565,"data":{"customer_id":"c","email_id":"e1","campaign_id":-0.0,"broadcast_id":1.50e1}}`,
	`{"event_id":"c","event_type":"in_app_clicked","timestamp":-62135596800,"data":{"customer_id":true,"action_id":{"zz":1,"a":"x\u0001\"","bb":[1,2.50,null]}}}`,
	`{"event_id":"d","event_type":"in_app_","timestamp":253402300799.9999,"data":{"recipients":[{"failure_message":"bad"}]}}`,
	`{"event_id":"e","event_type":"_x","timestamp":253402300800,"object_type":null,"data":{"recipients":{"failure_message":7}}}`,
	`{"event_id":"f","event_type":5,"timestamp":"1700000000","metric":"sent","data":[1,2]}`,
	`{"event_id":"g","object_type":"email","metric":"sent","timestamp":1e9,"data":{"recipient":"r@x.io","journey_id":[],"newsletter_id":{},"content_id":12345678901234567890123}}`,
	`{"event_id":"h","object_type":"sms","metric":"sent","timestamp":-1.5e-3,"data":{"recipient":"+1555","email_address":null,"failure_message":null,"recipients":[]}}`,
	`{"event_id":"i","event_type":"a_b_c","timestamp":1e-7,"cioloader_import":{"source":"customerio_app_api"},"data":{"transactional_message_id":0.000100,"parent_action_id":1E+3,"trigger_event_id":"t"}}`,
	`{"event_id":"j","object_type":{"k":"v"},"metric":["m"],"timestamp":true,"cioloader_import":[1],"data":{"identifiers":{"email":"e@x.io","id":null},"customer_id":"fallback"}}`,
	`{"event_id":"k","object_type":"email","metric":"clicked","timestamp":1699999999.9999995,"data":{"identifiers":[],"email_address":"ea@x.io"}}`,
	`{"event_id":"l","event_type":"customer_unsubscribed","timestamp":0,"data":{"customer_id":"x\ny","email_address":"ü@x.io"}}`,
	// erasure keys: every path, repeats (the same id twice, an email in two cases), numbers, a recipient without "@"
	`{"event_id":"m","event_type":"email_sent","data":{"customer_id":7,"email_address":"A@X.io","recipient":"a@x.io","variables":{"customer":{"id":"7","email":"B@x.io"}},"identifiers":{"cio_id":12,"id":7.0}}}`,
	`{"event_id":"n","object_type":"sms","metric":"sent","data":{"recipient":"+1555","identifiers":{"email":"É@x.io","id":"7","cio_id":"c"},"customer_id":"7","variables":{"customer":["x"]}}}`,
}

// TestFactsMatchSQL holds facts.Of (Go, at ingest and replay) equal to the SQL
// that computed event_facts before it and still fills a table an upgrade
// makes, on Postgres itself, for every body built from Customer.io's spec, the
// payloads in testdata/events and the edge cases above: what the views show
// must not depend on which path wrote the row.
func TestFactsMatchSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.New(t))
	require.NoError(t, err)
	defer conn.Close(ctx)

	bodies := append([]string{}, factsEdgeBodies...)
	for _, glob := range []string{"../../testdata/customerio/bodies/*.json", "../../testdata/events/*.json"} {
		files, err := filepath.Glob(glob)
		require.NoError(t, err)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			bodies = append(bodies, string(b))
		}
	}
	require.Greater(t, len(bodies), 80)

	cols := postgres.FactsSQL()
	exprs := make([]string, 0, len(cols))
	var hashesSQL, customerSQL string
	for _, c := range cols {
		switch c[0] {
		case "erasure_hashes":
			hashesSQL = c[1]
		case "customer_id":
			customerSQL = c[1]
		}
		if c[0] == "event_id" || c[0] == "received_at" || c[0] == "_sdc_sequence" || c[0] == "erasure_hashes" {
			continue
		}
		e := c[1]
		if c[0] == "occurred_at" {
			e = "((extract(epoch FROM " + e + ") * 1000000)::bigint)::text"
		}
		exprs = append(exprs, e+" AS "+c[0])
	}
	q := `SELECT ` + strings.Join(exprs, ", ") + ` FROM (SELECT $1::json::jsonb AS r) AS j`
	for _, body := range bodies {
		dec := json.NewDecoder(bytes.NewReader([]byte(body)))
		dec.UseNumber()
		var obj map[string]any
		require.NoError(t, dec.Decode(&obj), body)
		want := map[string]*string{}
		rows, err := conn.Query(ctx, q, body)
		require.NoError(t, err, body)
		row, err := pgx.CollectExactlyOneRow(rows, pgx.RowToMap)
		require.NoError(t, err, body)
		for k, v := range row {
			if v != nil {
				s := v.(string)
				want[k] = &s
			} else {
				want[k] = nil
			}
		}
		got := facts.Of(obj)
		require.Equal(t, want, goFacts(got), "body %s", body)

		// erasure_hashes: the writer's, from Go's identifiers, against the fill's
		// (the hashes of cioloader.erasure_keys over the body but the id equal to
		// customer_id), as sets; and the customer_id hash with the fill's is
		// every erasure key's.
		var wantHashes, gotHashes, allHashes, withCustomer []int32
		require.NoError(t, conn.QueryRow(ctx, `SELECT h, cioloader.erasure_key_hashes(cioloader.erasure_keys(r)),
				ARRAY(SELECT DISTINCT x FROM unnest(h || hashtext(cioloader.erasure_key('id', `+customerSQL+`))) AS x WHERE x IS NOT NULL ORDER BY 1)
			FROM (SELECT $1::json::jsonb AS r) AS j CROSS JOIN LATERAL (SELECT `+hashesSQL+` AS h) AS f`, body).Scan(&wantHashes, &allHashes, &withCustomer), body)
		require.Equal(t, allHashes, withCustomer, "the fill's hashes and customer_id's of body %s", body)
		args := make([]any, len(got.Identifiers))
		for i, o := range got.Identifiers {
			if o.Valid {
				args[i] = o.S
			}
		}
		require.NoError(t, conn.QueryRow(ctx, `SELECT ARRAY(SELECT DISTINCT h FROM unnest(`+postgres.ErasureHashesSQL()+`) AS h ORDER BY 1)
			FROM (SELECT $1::text AS c0, $2::text AS c1, $3::text AS c2, $4::text AS c3, $5::text AS c4, $6::text AS c5, $7::text AS c6, $8::text AS c7) AS u`,
			args...).Scan(&gotHashes), body)
		require.Equal(t, wantHashes, gotHashes, "erasure hashes of body %s", body)
	}
}

func goFacts(f facts.Facts) map[string]*string {
	p := func(o facts.Opt) *string {
		if !o.Valid {
			return nil
		}
		return &o.S
	}
	var at *string
	if f.Occurred {
		s := strconv.FormatInt(f.OccurredAt.UnixMicro(), 10)
		at = &s
	}
	return map[string]*string{
		"object_type": p(f.ObjectType), "metric": p(f.Metric), "event_name": p(f.StoredEventName()), "occurred_at": at,
		"customer_id": p(f.CustomerID), "email": p(f.Email), "delivery_id": p(f.DeliveryID), "failure_message": p(f.FailureMessage),
		"source": p(f.Source), "campaign_id": p(f.CampaignID), "broadcast_id": p(f.BroadcastID), "action_id": p(f.ActionID),
		"journey_id": p(f.JourneyID), "newsletter_id": p(f.NewsletterID), "transactional_message_id": p(f.TransactionalID),
		"parent_action_id": p(f.ParentActionID), "trigger_event_id": p(f.TriggerEventID), "content_id": p(f.ContentID),
	}
}
