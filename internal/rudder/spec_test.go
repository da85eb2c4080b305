package rudder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// specFile is Customer.io's reporting-webhooks OpenAPI document, as published.
const specFile = "../../testdata/customerio/reporting-webhooks-openapi.json"

// schema is the part of an OpenAPI schema object these tests read.
type schema struct {
	Ref        string             `json:"$ref"`
	Title      string             `json:"title"`
	Enum       []string           `json:"enum"`
	AllOf      []schema           `json:"allOf"`
	Properties map[string]*schema `json:"properties"`
}

// specPairs reads every (object_type, metric) pair the spec documents: each titled
// schema's metric enum, with every object_type its own properties or its allOf parts
// allow ("object_type_type" is how the preferences schema spells it).
func specPairs(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile(specFile)
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas map[string]*schema `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	all := doc.Components.Schemas
	var pairs [][2]string
	for _, s := range all {
		metrics, types := enums(all, s, "metric"), enums(all, s, "object_type")
		types = append(types, enums(all, s, "object_type_type")...)
		if s.Title == "" || len(metrics) == 0 {
			continue
		}
		for _, ot := range types {
			for _, m := range metrics {
				pairs = append(pairs, [2]string{ot, m})
			}
		}
	}
	return pairs
}

// enums collects the enum of property prop in s and in its allOf parts, following refs.
func enums(all map[string]*schema, s *schema, prop string) []string {
	if s.Ref != "" {
		s = all[s.Ref[strings.LastIndex(s.Ref, "/")+1:]]
	}
	var out []string
	if p, ok := s.Properties[prop]; ok {
		out = append(out, p.Enum...)
	}
	for i := range s.AllOf {
		out = append(out, enums(all, &s.AllOf[i], prop)...)
	}
	return out
}

// TestSpecPairsAllNamed reads Customer.io's own spec, not our table: every pair it
// documents has a name.
func TestSpecPairsAllNamed(t *testing.T) {
	t.Parallel()
	pairs := specPairs(t)
	require.Greater(t, len(pairs), 67)
	for _, p := range pairs {
		require.NotEqual(t, UnknownEvent, eventName(p[0], p[1]), "%s/%s", p[0], p[1])
	}
}

// TestSpecBodiesNamed transforms every body of testdata/customerio/bodies, built from
// the spec's schemas: each gets a name, and the body's object_type and metric.
func TestSpecBodiesNamed(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../testdata/customerio/bodies/*.json")
	require.NoError(t, err)
	require.Len(t, files, 69)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		obj := decodeJSON(t, b).(map[string]any)
		e := Transform(obj, testOptions)
		require.NotEqual(t, UnknownEvent, e.Name(), f)
		ot, _ := e.ObjectType()
		require.Equal(t, obj["object_type"], ot)
	}
}
