package importer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/importer"
)

// specBody is a reporting-webhook email event as Customer.io's spec shows one.
func specBody(i int) string {
	return fmt.Sprintf(`{"event_id":"01E2EMRMM6TZ12TF8WGZN0WJ%04d","object_type":"email","metric":"opened","timestamp":%d,
		"data":{"action_id":36,"campaign_id":6,"customer_id":"user-%d","delivery_id":"RAECAAFwnUSneIa0ZXkmq8EdkAM%04d",
		"identifiers":{"id":"user-%d","email":"user%d@example.com"},"recipient":"user%d@example.com","subject":"Hi"}}`,
		i, 1700000000+i, i, i, i, i, i)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func bodies(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, specBody(i))
	}
	return out
}

// TestImportFiles: one object, an array and NDJSON land through the ingest
// path in every table; the import is listed with its counts; run again it
// changes no row count.
func TestImportFiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	one := writeFile(t, "one.json", specBody(0))
	arr := writeFile(t, "arr.json", "[\n"+strings.Join(bodies(1, 6), ",\n")+"\n]\n")
	nd := writeFile(t, "events.ndjson", strings.Join(bodies(6, 10), "\n")+"\n"+`{"no_event_id": true}`+"\n")
	imp, err := b.im.Files(ctx, b.in, []string{one, arr, nd}, nil, nil)
	require.NoError(t, err)
	require.Equal(t, domain.ImportDone, imp.State)
	require.EqualValues(t, 11, imp.Deliveries, "objects read")
	require.EqualValues(t, 10, imp.EventsWritten)
	counts := b.tableCounts(t)
	require.EqualValues(t, 10, counts["data"])
	require.EqualValues(t, 10, counts["rudder_events"])
	require.EqualValues(t, 10, counts["event_facts"])
	require.EqualValues(t, 1, counts["_sdc_rejected"], "the object without event_id is kept in _sdc_rejected")
	require.EqualValues(t, 10, b.count(t, `SELECT count(*) FROM stitch_customerio.events WHERE source = 'webhook' AND metric = 'opened'`))

	// Counted in the activity counters, as a webhook delivery is (flushed about once a second).
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT coalesce(sum(events), 0) FROM cioloader.activity WHERE integration_id = $1 AND metric = 'opened'`, b.in.ID) == 10
	}, 10*time.Second, 50*time.Millisecond)

	list, err := b.app.Store.ListImports(ctx, b.in.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, domain.ImportFile, list[0].Source)
	require.Len(t, list[0].Units, 3)
	for _, u := range list[0].Units {
		require.True(t, u.Done, u.Unit)
	}

	imp2, err := b.im.Files(ctx, b.in, []string{one, arr, nd}, nil, nil)
	require.NoError(t, err)
	require.NotEqual(t, imp.ID, imp2.ID, "a finished import is not resumed: a new one reads the files again")
	again := b.tableCounts(t)
	require.EqualValues(t, counts["_sdc_rejected"]+1, again["_sdc_rejected"], "an unusable object is logged each time it is sent, as by webhook")
	delete(again, "_sdc_rejected")
	delete(counts, "_sdc_rejected")
	require.Equal(t, counts, again, "the same events again change no event table")
}

// TestImportFileMalformedWritesNothing: a file that is not JSON, or holds a
// non-object, is refused with its byte offset, and nothing of it is written.
func TestImportFileMalformedWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for name, content := range map[string]string{
		"truncated.json": "[" + specBody(1) + "," + specBody(2)[:40],
		"scalar.ndjson":  specBody(1) + "\n42\n",
		"garbage.json":   specBody(1) + "\nnot json\n",
		"extra.json":     "[" + specBody(1) + "] {}",
	} {
		_, err := b.im.Files(ctx, b.in, []string{writeFile(t, name, content)}, nil, nil)
		require.ErrorIs(t, err, domain.ErrInvalid, name)
		require.EqualValues(t, 0, b.count(t, "SELECT count(*) FROM stitch_customerio.data"), name)
	}
	_, err := b.im.Files(ctx, b.in, []string{filepath.Join(t.TempDir(), "missing.json")}, nil, nil)
	require.ErrorIs(t, err, domain.ErrInvalid)
}

// TestImportFileResumes: an import interrupted after its first chunk is
// continued from the file's saved offset by the same command, which reads
// only the rest; every event is stored once.
func TestImportFileResumes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.im.ChunkEvents = 10
	path := writeFile(t, "big.json", "["+strings.Join(bodies(0, 35), ",")+"]")
	ctx, cancel := context.WithCancel(context.Background())
	chunks := 0
	imp, err := b.im.Files(ctx, b.in, []string{path}, nil, func(importer.Status) {
		if chunks++; chunks == 2 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, domain.ImportInterrupted, imp.State)
	require.EqualValues(t, 20, b.count(t, "SELECT count(*) FROM stitch_customerio.data"))

	var reads []int64
	imp2, err := b.im.Files(context.Background(), b.in, []string{path}, nil, func(st importer.Status) { reads = append(reads, st.Deliveries) })
	require.NoError(t, err)
	require.Equal(t, imp.ID, imp2.ID, "the interrupted import is continued")
	require.Equal(t, domain.ImportDone, imp2.State)
	require.EqualValues(t, 35, imp2.Deliveries, "20 before the interruption, 15 after: none read twice")
	require.EqualValues(t, 35, b.count(t, "SELECT count(*) FROM stitch_customerio.data"))
	require.EqualValues(t, 35, b.count(t, "SELECT count(*) FROM stitch_customerio.rudder_events"))
}

// TestImportStdin reads standard input.
func TestImportStdin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	imp, err := b.im.Files(context.Background(), b.in, []string{importer.Stdin}, strings.NewReader(strings.Join(bodies(0, 3), "\n")), nil)
	require.NoError(t, err)
	require.EqualValues(t, 3, imp.EventsWritten)
	require.EqualValues(t, 3, b.count(t, "SELECT count(*) FROM stitch_customerio.data"))
}
