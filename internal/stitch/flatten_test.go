package stitch

import (
	"cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFlatten(t *testing.T) {
	t.Parallel()
	long60 := strings.Repeat("k", 60)
	for _, tc := range []struct {
		name  string
		event string
		lim   Limits
		want  []string
	}{
		{"email_event", emailSent, Limits{}, []string{
			"data data__action_id bigint 42",
			"data data__campaign_id bigint 23",
			"data data__content text <html><body><h1>Welcome aboard</h1><p>Thanks for signing up, we are glad to have you with us. Here is what happens next: confirm your address, set up your profile and invite your team.</p></body></html>",
			"data data__customer_id text user-123",
			"data data__delivery_id text RAECAAFwnUSneIa0ZXkmq8EdkAM==",
			"data data__identifiers__cio_id text d9c106000001",
			"data data__identifiers__email text test@example.com",
			"data data__identifiers__id text user-123",
			"data data__journey_id text 01GW2Z8H9JQ6ZPBV4PAF0RRT2S",
			"data data__parent_action_id bigint 41",
			"data data__recipient text test@example.com",
			"data data__sent_at double precision 1.64422793725e+09",
			"data data__subject text Thanks for signing up",
			"data data__test boolean false",
			"data data__trigger_event_id text 01GW2Z8F2WFQ2KQX7Z2DXH2V9S",
			"data metric text sent",
			"data object_type text email",
			"data timestamp bigint 1644227937",
			"data__data__headers__CustomHeader[0] value text custom-value",
			"data__data__headers__XMailgunTag[0] value text welcome",
			"data__data__headers__XMailgunTag[1] value text onboarding",
		}},
		{"push_recipients", pushSent, Limits{}, []string{
			"data data__action_id bigint 37",
			"data data__broadcast_id bigint 9",
			"data data__customer_id text 0200102",
			"data data__delivery_id text RPILAgUBcRhIBqSfeiIwdIYJKxTY",
			"data data__identifiers__id text 0200102",
			"data metric text sent",
			"data object_type text push",
			"data timestamp bigint 1585250350",
			"data__data__recipients[0] device_id text eeC2XC_NVPo",
			"data__data__recipients[0] device_platform text android",
			"data__data__recipients[1] device_id text 740f4707beb",
			"data__data__recipients[1] device_platform text ios",
		}},
		{"scalar_array_value", `{"tags":["a",1,true]}`, Limits{}, []string{
			"data (empty)",
			"data__tags[0] value text a",
			"data__tags[1] value bigint 1",
			"data__tags[2] value boolean true",
		}},
		{"nested_arrays_two_levels", `{"a":[{"id":1,"b":[1,2]},{"b":[{"c":"x"}]}]}`, Limits{}, []string{
			"data (empty)",
			"data__a[0] id bigint 1",
			"data__a[1] (empty)",
			"data__a__b[0 0] value bigint 1",
			"data__a__b[0 1] value bigint 2",
			"data__a__b[1 0] c text x",
		}},
		{"array_in_array", `{"m":[[1,2],[],[[3]]]}`, Limits{}, []string{
			"data (empty)",
			"data__m[0] (empty)",
			"data__m[1] (empty)",
			"data__m[2] (empty)",
			"data__m__value[0 0] value bigint 1",
			"data__m__value[0 1] value bigint 2",
			"data__m__value[2 0] (empty)",
			"data__m__value__value[2 0 0] value bigint 3",
		}},
		{"empty_arrays_and_objects", `{"a":[],"o":{},"n":{"x":{},"y":[]},"s":""}`, Limits{}, []string{
			"data s text ",
		}},
		{"nulls", `{"a":null,"o":{"x":null},"arr":[null,1],"deep":{"n":[null]}}`, Limits{}, []string{
			"data (empty)",
			"data__arr[0] (empty)",
			"data__arr[1] value bigint 1",
			"data__deep__n[0] (empty)",
		}},
		{"null_does_not_claim", `{"a!":null,"a":1}`, Limits{}, []string{"data a bigint 1"}},
		{"event_id_skipped_and_guarded", `{"event_id":"e1","event_id!":"x","eventid":1}`, Limits{}, []string{
			"data eventid bigint 1",
			"! data: Field collision on event_id",
		}},
		{"collision_same_cleaned_key", `{"a-b":1,"ab":2}`, Limits{}, []string{
			"data ab bigint 1",
			"! data: Field collision on ab",
		}},
		{"collision_object_path_vs_key", `{"a":{"b":1},"a__b":"x"}`, Limits{}, []string{
			"data a__b bigint 1",
			"! data: Field collision on a__b",
		}},
		{"collision_arrays", `{"x":[1],"x!":[2]}`, Limits{}, []string{
			"data (empty)",
			"data__x[0] value bigint 1",
			"! data: Field collision on x",
		}},
		{"collision_in_subtable_row", `{"r":[{"a b":1,"ab":2}]}`, Limits{}, []string{
			"data (empty)",
			"data__r[0] ab bigint 1",
			"! data__r: Field collision on ab",
		}},
		{"collision_subtable_from_two_parents", `{"p":[{"q__r":[1]}],"p__q":[{"r":[2]}]}`, Limits{}, []string{
			"data (empty)",
			"data__p[0] (empty)",
			"data__p__q[0] (empty)",
			"data__p__q__r[0 0] value bigint 1",
			"! data__p__q: Field collision on data__p__q__r",
		}},
		{"column_too_long", `{"` + long60 + `":1,"` + long60[:59] + `":2}`, Limits{}, []string{
			"data " + long60[:59] + " bigint 2",
			"! data: Column name " + long60 + " is too long for PostgreSQL",
		}},
		{"too_long_measured_after_join", `{"data":{"` + long60[:53] + `":1,"` + long60[:54] + `":2}}`, Limits{}, []string{
			"data data__" + long60[:53] + " bigint 1",
			"! data: Column name data__" + long60[:54] + " is too long for PostgreSQL",
		}},
		{"multibyte_key_measured_in_bytes", `{"ключ` + long60[:59] + `":1,"é` + long60 + `":2}`, Limits{}, []string{
			"data " + long60[:59] + " bigint 1",
			"! data: Column name " + long60 + " is too long for PostgreSQL",
		}},
		{"table_too_long", `{"` + long60[:58] + `":[1],"` + long60[:57] + `":[2]}`, Limits{}, []string{
			"data (empty)",
			"data__" + long60[:57] + "[0] value bigint 2",
			"! data: Table name data__" + long60[:58] + " is too long for PostgreSQL",
		}},
		{"reserved", `{"_sdc_x":1,"_rjm":2,"x__st":3,"o":{"bo":true},"_SDC":4,"_sdc_arr":[1],"d":{"_sdc":5}}`, Limits{}, []string{
			"data _SDC bigint 4",
			"data d___sdc bigint 5",
			"! data: Column name _rjm uses a reserved prefix",
			"! data: Column name _sdc_arr uses a reserved prefix",
			"! data: Column name _sdc_x uses a reserved prefix",
			"! data: column names from client should not include reserved datatype suffix: o__bo",
			"! data: column names from client should not include reserved datatype suffix: x__st",
		}},
		{"reserved_in_subtable", `{"r":[{"_sdc_level_0_id":1,"ok":2}]}`, Limits{}, []string{
			"data (empty)",
			"data__r[0] ok bigint 2",
			"! data__r: Column name _sdc_level_0_id uses a reserved prefix",
		}},
		{"empty_segment", `{"!!!":1,"123":{"x":1},"o":{"日本":"v"},"e":{"@":null}}`, Limits{}, []string{
			"data (empty)",
			`! data: Key "!!!" has no characters usable in a column name`,
			`! data: Key "123" has no characters usable in a column name`,
			`! data: Key "日本" under o has no characters usable in a column name`,
		}},
		{"depth_bound", `{"a":{"b":{"c":1,"d":{"e":2},"n":null,"z":{}}},"x":1,"arr":[1],"deep":[[1]]}`, Limits{MaxDepth: 2}, []string{
			"data x bigint 1",
			"data__arr[0] value bigint 1",
			"data__deep[0] (empty)",
			"data__deep__value[0 0] (empty)",
			"! data: Key a__b__c is nested deeper than 2 levels",
			"! data: Key a__b__d is nested deeper than 2 levels",
			"! data__deep__value: Key value is nested deeper than 2 levels",
		}},
		{"depth_bound_scalar_elements", `{"a":{"t":[1]}}`, Limits{MaxDepth: 2}, []string{
			"data (empty)",
			"data__a__t[0] (empty)",
			"! data__a__t: Key value is nested deeper than 2 levels",
		}},
		{"keys_bound_exact", `{"a":1,"b":2,"c":3}`, Limits{MaxKeys: 3}, []string{
			"data a bigint 1", "data b bigint 2", "data c bigint 3",
		}},
		{"keys_bound_exceeded", `{"a":1,"b":2,"c":3,"d":4,"e":5}`, Limits{MaxKeys: 3}, []string{
			"data a bigint 1", "data b bigint 2", "data c bigint 3",
			"! data: Event has more than 3 keys",
		}},
		{"keys_bound_counts_rows", `{"a":1,"r":[1,2,3]}`, Limits{MaxKeys: 4}, []string{
			"data a bigint 1",
			"data__r[0] value bigint 1",
			"data__r[1] (empty)",
			"! data__r: Event has more than 4 keys",
		}},
		{"keys_bound_before_subtable", `{"a":1,"r":[1]}`, Limits{MaxKeys: 1}, []string{
			"data a bigint 1",
			"! data__r: Event has more than 1 keys",
		}},
		{"numbers", `{"big":123456789012345678901234567890,"neg":-9223372036854775808,"over":9223372036854775808,
			"f":1.5,"one":1.0,"e":1e2,"inf":1e400,"ninf":-1E+400,"tiny":1e-400,"huge":1e200000,"t":true,"no":false,"s":"42"}`, Limits{}, []string{
			"data big numeric 123456789012345678901234567890",
			"data e double precision 100",
			"data f double precision 1.5",
			"data inf numeric 1e400",
			"data neg bigint -9223372036854775808",
			"data ninf numeric -1E+400",
			"data no boolean false",
			"data one double precision 1",
			"data over numeric 9223372036854775808",
			"data s text 42",
			"data t boolean true",
			"data tiny double precision 0",
			"! data: Number 1e200000 for column huge is out of range for PostgreSQL",
		}},
		{"sql_looking_keys", `{"a\"; DROP TABLE x; --":1,"Robert'); DROP TABLE students;--":[2],"timestamp":3,"select":"x"}`, Limits{}, []string{
			"data aDROPTABLEx bigint 1",
			"data select text x",
			"data timestamp bigint 3",
			"data__RobertDROPTABLEstudents[0] value bigint 2",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := tc.lim // a zero bound: the case does not test that bound
			lim.MaxDepth = cmp.Or(lim.MaxDepth, Limits{MaxDepth: 10, MaxKeys: 1000}.MaxDepth)
			lim.MaxKeys = cmp.Or(lim.MaxKeys, Limits{MaxDepth: 10, MaxKeys: 1000}.MaxKeys)
			got := Flatten(decode(t, tc.event), lim)
			require.Equal(t, tc.want, dump(got))
			checkInvariants(t, got)
		})
	}
}

func TestFlattenValueTypes(t *testing.T) {
	t.Parallel()
	r := Flatten(decode(t, `{"s":"x","i":7,"n":1e400,"d":0.5,"b":true}`), Limits{MaxDepth: 10, MaxKeys: 1000})
	want := map[string]any{"s": "x", "i": int64(7), "n": "1e400", "d": 0.5, "b": true}
	for _, f := range r.Tables[0].Rows[0].Fields {
		require.Equal(t, want[f.Name], f.Value, f.Name)
	}
	require.Len(t, r.Tables[0].Rows[0].Fields, len(want))
}

func TestFlattenShape(t *testing.T) {
	t.Parallel()
	r := Flatten(decode(t, pushSent), Limits{MaxDepth: 10, MaxKeys: 1000})
	require.Len(t, r.Tables, 2)
	require.Equal(t, "data", r.Tables[0].Name)
	require.Equal(t, 0, r.Tables[0].Depth)
	require.Len(t, r.Tables[0].Rows, 1)
	require.Nil(t, r.Tables[0].Rows[0].Levels)
	sub := r.Tables[1]
	require.Equal(t, "data__data__recipients", sub.Name)
	require.Equal(t, 1, sub.Depth)
	require.Equal(t, []int64{0}, sub.Rows[0].Levels)
	require.Equal(t, []int64{1}, sub.Rows[1].Levels)
	require.Nil(t, r.Problems)
}

func TestFlattenEmptyEvent(t *testing.T) {
	t.Parallel()
	for _, ev := range []map[string]any{nil, {}, {"event_id": "x"}} {
		r := Flatten(ev, Limits{MaxDepth: 10, MaxKeys: 1000})
		require.Equal(t, []Table{{Name: "data", Rows: []Row{{}}}}, r.Tables)
		require.Nil(t, r.Problems)
	}
}

func TestFlattenDeterministic(t *testing.T) {
	t.Parallel()
	ev := `{"z":1,"a":{"y":[{"b":1,"a":2}],"x":"s"},"b-1":true,"b1":false,"m":[[1],[2,{"k":null}]],"!!":1}`
	first := Flatten(decode(t, ev), Limits{MaxDepth: 10, MaxKeys: 1000})
	for range 20 {
		require.Equal(t, first, Flatten(decode(t, ev), Limits{MaxDepth: 10, MaxKeys: 1000}))
	}
}

// TestFlattenResultOwnsMemory checks that a Result does not share buffers with
// the pooled flattener: a later Flatten must not change an earlier Result.
func TestFlattenResultOwnsMemory(t *testing.T) {
	t.Parallel()
	first := Flatten(decode(t, pushSent), Limits{MaxDepth: 10, MaxKeys: 1000})
	want := dump(first)
	for range 50 {
		Flatten(decode(t, emailSent), Limits{MaxDepth: 10, MaxKeys: 1000})
	}
	require.Equal(t, want, dump(first))
}

// TestFlattenSampleEvents flattens every shipped Customer.io sample: none may
// produce a problem, and every result must satisfy the writer's invariants.
func TestFlattenSampleEvents(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob("../../testdata/events/*.json")
	require.NoError(t, err)
	if len(paths) == 0 {
		t.Skip("no sample events in testdata/events")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(path)
			require.NoError(t, err)
			ev, err := decodeEvent(body)
			require.NoError(t, err)
			r := Flatten(ev, Limits{MaxDepth: 10, MaxKeys: 1000})
			checkInvariants(t, r)
			require.Empty(t, r.Problems)
			require.NotEmpty(t, r.Tables[0].Rows[0].Fields)
		})
	}
}
