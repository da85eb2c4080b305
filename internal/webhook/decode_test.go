package webhook

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeRefusesWholeBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"empty", "  ", "empty"},
		{"not_json", "{nope", "not valid JSON"},
		{"trailing", `{"event_id":"a"} {}`, "after the top-level value"},
		{"string", `"hello"`, "must be a JSON object or an array"},
		{"null", `null`, "must be a JSON object or an array"},
		{"number", `42`, "must be a JSON object or an array"},
		{"bad_array", `[{"event_id":"a"},`, "not valid JSON"},
		{"scalar_element", `[{"event_id":"a"}, 3]`, "array element 1 is not a JSON object"},
		{"null_element", `[null]`, "array element 0 is not a JSON object"},
		{"too_many", "[" + strings.Repeat(`{},`, 3) + `{}]`, "at most 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode([]byte(tc.body), 3)
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			require.Contains(t, inv.Msg, tc.want)
		})
	}
}

func TestDecodeEventIDs(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 256)
	body := `[
	 {"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","metric":"sent"},
	 {"event_id":12345678901234567890123},
	 {"metric":"sent"},
	 {"event_id":null},
	 {"event_id":""},
	 {"event_id":"  "},
	 {"event_id":true},
	 {"event_id":{"a":1}},
	 {"event_id":"` + long + `"},
	 {"event_id":"` + long[:255*2] + `"}
	]`
	b, err := Decode([]byte(body), 100)
	require.NoError(t, err)
	ids := []string{}
	for _, e := range b.Events {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []string{"01E4C4CT6YDC7Y5M7FE1GWWPQJ", "12345678901234567890123", long[:255*2]}, ids)
	reasons := []string{}
	for _, r := range b.Rejected {
		reasons = append(reasons, r.Reason)
	}
	require.Equal(t, []string{
		"Record is missing key property event_id",
		"event_id is null",
		"event_id is empty",
		"event_id is empty",
		"event_id must be a string or a number, not a boolean",
		"event_id must be a string or a number, not an object",
		"event_id is longer than 255 characters",
	}, reasons)
	require.Equal(t, `{"metric":"sent"}`, b.Rejected[0].Record)
}

func TestDecodeKeepsNumbersAndRawBytes(t *testing.T) {
	t.Parallel()
	body := ` {"event_id":"e1","timestamp":1585250199,"big":123456789012345678901234567890,"f":0.5} `
	b, err := Decode([]byte(body), 10)
	require.NoError(t, err)
	require.Len(t, b.Events, 1)
	e := b.Events[0]
	require.Equal(t, json.Number("123456789012345678901234567890"), e.Body["big"])
	require.Equal(t, json.Number("1585250199"), e.Body["timestamp"])
	require.Equal(t, strings.TrimSpace(body), string(e.Raw), "clean bodies are kept byte for byte")
	require.Zero(t, b.Replaced)
}

func TestDecodeSanitises(t *testing.T) {
	t.Parallel()
	body := "{\"event_id\":\"e1\",\"a\\u0000b\":\"x\\u0000y\",\"bad\":\"\xff\xfe\",\"lone\":\"\\ud800\",\"pair\":\"\\ud83d\\ude00\"}"
	b, err := Decode([]byte(body), 10)
	require.NoError(t, err)
	e := b.Events[0]
	require.Equal(t, "x\uFFFDy", e.Body["a\uFFFDb"])
	require.Equal(t, "\uFFFD\uFFFD", e.Body["bad"])
	require.Equal(t, "\uFFFD", e.Body["lone"])
	require.Equal(t, "😀", e.Body["pair"])
	require.Equal(t, 5, b.Replaced) // two NULs, two invalid bytes, one lone surrogate
	require.NotContains(t, string(e.Raw), `\u0000`)
	require.True(t, json.Valid(e.Raw))
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"event_id":"a","data":{"x":[1,2,{"y":null}]}}`))
	f.Add([]byte(`[{"event_id":1},{"nope":true}]`))
	f.Add([]byte("{\"event_id\":\"\\u0000\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Decode(body, 50)
		if err != nil {
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			require.Empty(t, b.Events)
			return
		}
		for _, e := range b.Events {
			require.NotEmpty(t, e.ID)
			require.True(t, json.Valid(e.Raw))
			require.NotContains(t, string(e.Raw), `\u0000`)
			// Raw is exactly the object Body was decoded from (an array's
			// elements are slices of the body).
			dec := json.NewDecoder(bytes.NewReader(e.Raw))
			dec.UseNumber()
			var again map[string]any
			require.NoError(t, dec.Decode(&again))
			require.Equal(t, e.Body, again)
		}
	})
}

// Ensure each element of an array keeps exactly its own JSON, whatever white
// space separates them, and that nothing may follow the array.
func TestDecodeArrayElementsKeepTheirJSON(t *testing.T) {
	t.Parallel()
	b, err := Decode([]byte("[ {\"event_id\":\"a\",\"n\":1}\n,\r\n\t{\"event_id\":\"b\",\"x\":[1,{\"y\":\"]\"}]} ,{\"event_id\":\"c\"}]"), 10)
	require.NoError(t, err)
	require.Len(t, b.Events, 3)
	require.Equal(t, `{"event_id":"a","n":1}`, string(b.Events[0].Raw))
	require.Equal(t, `{"event_id":"b","x":[1,{"y":"]"}]}`, string(b.Events[1].Raw))
	require.Equal(t, `{"event_id":"c"}`, string(b.Events[2].Raw))

	for _, body := range []string{`[{"event_id":"a"}] {}`, `[{"event_id":"a"},]`, `[{"event_id":"a"}`, `[{"event_id":"a"} {"event_id":"b"}]`} {
		_, err := Decode([]byte(body), 10)
		var inv *InvalidError
		require.ErrorAs(t, err, &inv, body)
	}
	_, err = Decode([]byte(`[{"event_id":"a"},{"event_id":"b"},{"event_id":"c"}]`), 2)
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.True(t, inv.TooManyEvents)
}

func TestDecodeRejectsNumbersPostgresCannotStore(t *testing.T) {
	t.Parallel()
	b, err := Decode([]byte(`[{"event_id":"a","x":1e400},{"event_id":"b","x":{"y":[1e200000]}},{"event_id":"c","x":0e99},{"event_id":"d","x":1.5e-16000}]`), 10)
	require.NoError(t, err)
	require.Len(t, b.Events, 3)
	require.Len(t, b.Rejected, 1)
	require.Contains(t, b.Rejected[0].Reason, "outside the range Postgres can store")
	require.Contains(t, b.Rejected[0].Record, `"event_id":"b"`)
	for _, tc := range []struct {
		n  string
		ok bool
	}{
		{"1", true}, {"-0.5", true}, {"1e131071", true}, {"1e131072", false}, {"1e-16383", true}, {"1e-16384", false},
		{"12.5e-16382", true}, {"0.0e99999999999", false}, {"1e99999999999", false},
		{"0e-16384", false}, {"0.0e-99999", false}, {"0e2000000000", false}, {"0e-16383", true}, {"0e5", true},
	} {
		require.Equal(t, tc.ok, fitsNumeric(tc.n), tc.n)
	}
}

func TestCountLoneSurrogates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`"\ud800"`, 1}, {`"\udc00"`, 1}, {`"\ud83d\ude00"`, 0}, {`"\ud800\ud800"`, 2},
		{`"\\ud800"`, 0}, {`"\ud800x"`, 1}, {`"\ud800\n"`, 1}, {`"ok"`, 0}, {`"\ud800","lo":"x\udfff"`, 2}, {`"\ud800\u0041"`, 1},
	} {
		require.Equal(t, tc.want, countLoneSurrogates([]byte(tc.in)), tc.in)
	}
}

// BenchmarkDecodeArray decodes an array of 100 realistic ~1 KB events.
func BenchmarkDecodeArray(b *testing.B) {
	ev, err := os.ReadFile("../../testdata/events/email_sent.json")
	require.NoError(b, err)
	body := []byte("[" + strings.TrimSuffix(strings.Repeat(string(ev)+",", 100), ",") + "]")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body, 10000); err != nil {
			b.Fatal(err)
		}
	}
}
