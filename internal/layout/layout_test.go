// Package layout holds no code: its test enforces which package may import what
// (STYLE.md, "The shape we want"), reading the real import graph from `go list`.
package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/cioloader/cioloader/"

// pkg is the part of `go list -json` this test reads (non-test imports only).
type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	pkgs := map[string][]string{}
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module)] = p.Imports
	}
	require.Contains(t, pkgs, "internal/postgres")
	return pkgs
}

// domainPackages are pure: the standard library and each other, nothing else.
var domainPackages = map[string]bool{
	"internal/domain": true, "internal/naming": true, "internal/stitch": true, "internal/rudder": true,
	"internal/signature": true, "internal/token": true, "internal/webhook": true, "internal/history": true,
	"internal/warehouse": true, "internal/facts": true,
}

func isStd(imp string) bool { return !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") }

// TestImportRules: domain packages import only the standard library (and other
// domain packages); echo only in httpapi; pgx only in postgres, pgcluster and the
// test support packages; httpapi imports no database adapter; cmd imports no driver.
func TestImportRules(t *testing.T) {
	t.Parallel()
	pgxAllowed := map[string]bool{"internal/postgres": true, "internal/pgcluster": true, "internal/testdb": true, "internal/apptest": true}
	for name, imports := range listPackages(t) {
		for _, imp := range imports {
			local := strings.TrimPrefix(imp, module)
			switch {
			case domainPackages[name]:
				require.True(t, isStd(imp) || domainPackages[local], "domain package %s imports %s", name, imp)
			case strings.HasPrefix(imp, "github.com/labstack/echo"):
				require.Equal(t, "internal/httpapi", name, "%s imports echo", name)
			case strings.HasPrefix(imp, "github.com/jackc/pgx"):
				require.True(t, pgxAllowed[name], "%s imports pgx (%s)", name, imp)
			}
			if name == "internal/httpapi" {
				require.NotContains(t, []string{"internal/postgres", "internal/pgcluster"}, local, "httpapi imports a database adapter")
			}
			if strings.HasPrefix(name, "cmd/") {
				require.False(t, strings.HasPrefix(imp, "github.com/jackc/") || strings.HasPrefix(imp, "github.com/lib/pq"),
					"%s imports a driver (%s)", name, imp)
			}
		}
	}
}
