package rudder

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// jsonObject decodes one JSON object literal with UseNumber.
func jsonObject(t *testing.T, s string) map[string]any {
	t.Helper()
	obj, ok := decodeJSON(t, []byte(s)).(map[string]any)
	require.True(t, ok)
	return obj
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		data     string
		userID   string // "" with userOK false: no userId
		userOK   bool
		anonID   string
		anonOK   bool
		wantJSON string // userId and anonymousId as the event prints them
	}{
		{"customer_id", `{"customer_id":"c1","identifiers":{"id":"i1"}}`, "c1", true, "", false, `{"userId":"c1"}`},
		{"identifiers.id fallback", `{"identifiers":{"id":"i1","email":"a@b.c"}}`, "i1", true, "", false, `{"userId":"i1"}`},
		{"null customer_id falls back", `{"customer_id":null,"identifiers":{"id":"i1"}}`, "i1", true, "", false, `{"userId":"i1"}`},
		{"empty customer_id is kept", `{"customer_id":"","identifiers":{"id":"i1"},"recipient":"a@b.c"}`, "", true, "", false, `{"userId":""}`},
		{"numeric customer_id", `{"customer_id":42}`, "42", true, "", false, `{"userId":42}`},
		{"false customer_id", `{"customer_id":false,"recipient":"a@b.c"}`, "false", true, "", false, `{"userId":false}`},
		{"email to anonymousId", `{"identifiers":{"email":"a@b.c"}}`, "", false, "a@b.c", true, `{"anonymousId":"a@b.c"}`},
		{"recipient to anonymousId", `{"recipient":"+15555550123"}`, "", false, "+15555550123", true, `{"anonymousId":"+15555550123"}`},
		{"email_address to anonymousId", `{"email_address":"a@b.c"}`, "", false, "a@b.c", true, `{"anonymousId":"a@b.c"}`},
		{"empty email is falsy", `{"email_address":""}`, "", false, "", false, `{}`},
		{"zero is falsy", `{"email_address":0}`, "", false, "", false, `{}`},
		{"zero fraction is falsy", `{"email_address":-0.0e5}`, "", false, "", false, `{}`},
		{"underflow is falsy", `{"email_address":1e-400}`, "", false, "", false, `{}`},
		{"false is falsy", `{"email_address":false}`, "", false, "", false, `{}`},
		{"number is truthy", `{"email_address":7}`, "", false, "7", true, `{"anonymousId":7}`},
		{"true is truthy", `{"email_address":true}`, "", false, "true", true, `{"anonymousId":true}`},
		{"empty array is truthy", `{"email_address":[]}`, "", false, "[]", true, `{"anonymousId":[]}`},
		{"empty object is truthy", `{"email_address":{}}`, "", false, "{}", true, `{"anonymousId":{}}`},
		{"no identity", `{"delivery_id":"d"}`, "", false, "", false, `{}`},
		{"data not an object", `"x"`, "", false, "", false, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := Transform(jsonObject(t, `{"data":`+tt.data+`}`), testOptions)
			userID, ok := e.UserID()
			require.Equal(t, tt.userOK, ok)
			require.Equal(t, tt.userID, userID)
			anonID, ok := e.AnonymousID()
			require.Equal(t, tt.anonOK, ok)
			require.Equal(t, tt.anonID, anonID)
			ids := map[string]any{}
			for _, k := range []string{"userId", "anonymousId"} {
				if v, ok := upstreamView(t, e)[k]; ok {
					ids[k] = v
				}
			}
			require.Equal(t, decodeJSON(t, []byte(tt.wantJSON)), ids)
		})
	}
}

func TestTimestamp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ts   string // the timestamp's JSON
		want string // "" when left out
	}{
		{"seconds", `1585250199`, "2020-03-26T19:16:39.000Z"},
		{"zero", `0`, "1970-01-01T00:00:00.000Z"},
		{"negative zero", `-0`, "1970-01-01T00:00:00.000Z"},
		{"negative", `-1`, "1969-12-31T23:59:59.000Z"},
		{"negative fraction truncates toward zero", `-1.0005`, "1969-12-31T23:59:59.000Z"},
		{"half second", `1585250199.5`, "2020-03-26T19:16:39.500Z"},
		{"float product truncates as in JavaScript", `1.001`, "1970-01-01T00:00:01.000Z"},
		{"sub-millisecond", `0.0009`, "1970-01-01T00:00:00.000Z"},
		{"exponent", `1.5e9`, "2017-07-14T02:40:00.000Z"},
		{"underflow", `1e-400`, "1970-01-01T00:00:00.000Z"},
		{"last kept instant", `253402300799.999`, "9999-12-31T23:59:59.999Z"},
		{"first kept instant", `-62135596800`, "0001-01-01T00:00:00.000Z"},
		{"year 10000", `253402300800`, ""},
		{"before year 1", `-62135596800.001`, ""},
		{"milliseconds", `1585250199000`, ""},
		{"beyond JavaScript Date", `10000000000000`, ""},
		{"overflow", `1e400`, ""},
		{"null", `null`, ""},
		{"true", `true`, ""},
		{"false", `false`, ""},
		{"empty string", `""`, ""},
		{"numeric string", `"1585250199"`, ""},
		{"ISO string", `"2020-03-26T19:16:39Z"`, ""},
		{"array", `[2020]`, ""},
		{"object", `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := Transform(jsonObject(t, `{"timestamp":`+tt.ts+`}`), testOptions)
			got := upstreamView(t, e)
			original, ok := e.OriginalTimestamp()
			sent, sentOK := e.SentAt()
			require.Equal(t, ok, sentOK)
			require.Equal(t, original, sent)
			if tt.want == "" {
				require.False(t, ok)
				require.NotContains(t, got, "originalTimestamp")
				require.NotContains(t, got, "sentAt")
				return
			}
			require.True(t, ok)
			require.Equal(t, time.UTC, original.Location())
			require.Equal(t, tt.want, original.Format(isoMillis))
			require.Equal(t, tt.want, got["originalTimestamp"])
			require.Equal(t, tt.want, got["sentAt"])
		})
	}
}

func TestTimestampMissing(t *testing.T) {
	t.Parallel()
	e := Transform(map[string]any{}, testOptions)
	_, ok := e.OriginalTimestamp()
	require.False(t, ok)
}

// TestDifferenceBigIntegerPrecision: numbers keep their exact literal; JavaScript
// would round 2^53+1 and the 30-digit id.
func TestDifferenceBigIntegerPrecision(t *testing.T) {
	t.Parallel()
	obj := jsonObject(t, `{"event_id":9007199254740993,"data":{"customer_id":123456789012345678901234567890,`+
		`"action_id":9007199254740993,"recipients":[{"n":1.10}],"link_id":-0.0}}`)
	e := Transform(obj, testOptions)
	b, err := e.MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(b), `"userId":123456789012345678901234567890`)
	require.Contains(t, string(b), `"eventId":9007199254740993`)
	require.Contains(t, string(b), `"actionId":9007199254740993`)
	require.Contains(t, string(b), `"recipients":[{"n":1.10}]`)
	require.Contains(t, string(b), `"link":{"id":-0.0}`)
	userID, ok := e.UserID()
	require.True(t, ok)
	require.Equal(t, "123456789012345678901234567890", userID)
	require.Equal(t, MessageID(testOptions.Namespace, "9007199254740993"), e.MessageID())
}

var uuidV5 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUUIDv5(t *testing.T) {
	t.Parallel()
	// RFC 9562 appendix A.4, and the derivation of our namespace.
	namespaceDNS := uuid{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	require.Equal(t, "2ed6657d-e927-568b-95e1-2665a8aea6a2", newSHA1(namespaceDNS, "www.example.com").String())
	ns := newSHA1(namespaceURL, "https://github.com/cioloader/cioloader/rudder_events/message_id")
	require.Equal(t, MessageIDNamespace, ns.String())
	require.Equal(t, messageNamespace, ns)
}

// TestDifferenceMessageIDDeterministic: messageId is UUIDv5(schema + "/" + event_id),
// the same for every delivery of an event (RudderStack: random per delivery).
func TestDifferenceMessageIDDeterministic(t *testing.T) {
	t.Parallel()
	obj := jsonObject(t, `{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","metric":"opened"}`)
	id := Transform(obj, testOptions).MessageID()
	require.Regexp(t, uuidV5, id)
	require.Equal(t, "4775ffca-313b-510b-baf4-27695772ad9a", id) // Python's uuid.uuid5 agrees
	require.Equal(t, MessageID("stitch_customerio", "01E4C4CT6YDC7Y5M7FE1GWWPQJ"), id)

	later := Options{Namespace: testOptions.Namespace, ReceivedAt: time.Now()}
	redelivery := jsonObject(t, `{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","metric":"clicked"}`)
	require.Equal(t, id, Transform(redelivery, later).MessageID(), "same schema and event_id")
	require.NotEqual(t, id, Transform(obj, Options{Namespace: "other"}).MessageID(), "other schema")
	require.NotEqual(t, id, Transform(jsonObject(t, `{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQK"}`), testOptions).MessageID())
	require.Equal(t, MessageID("stitch_customerio", "42"), Transform(jsonObject(t, `{"event_id":42}`), testOptions).MessageID())
}

// TestMessageIDWithoutEventID: without a string or number event_id the messageId
// still depends only on the object.
func TestMessageIDWithoutEventID(t *testing.T) {
	t.Parallel()
	a := Transform(jsonObject(t, `{"metric":"opened","data":{"event_id":"x"}}`), testOptions).MessageID()
	b := Transform(jsonObject(t, `{"data":{"event_id":"x"},"metric":"opened"}`), testOptions).MessageID()
	c := Transform(jsonObject(t, `{"metric":"clicked","data":{"event_id":"x"}}`), testOptions).MessageID()
	require.Regexp(t, uuidV5, a)
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
	require.NotEqual(t, a, Transform(jsonObject(t, `{"event_id":null,"metric":"opened","data":{"event_id":"x"}}`), testOptions).MessageID())
}

// TestDifferenceReceivedAt: receivedAt is Options.ReceivedAt in rudder-server's format.
func TestDifferenceReceivedAt(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 3, 3, 5, 48, 29, 123456789, time.FixedZone("CET", 3600))
	b, err := Transform(map[string]any{}, Options{ReceivedAt: at}).MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(b), `"receivedAt":"2024-03-03T04:48:29.123Z"`)
	b, err = Transform(map[string]any{}, Options{}).MarshalJSON()
	require.NoError(t, err)
	require.NotContains(t, string(b), "receivedAt")
}
