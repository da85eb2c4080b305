package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoBinaries is wrapped by the error Start and FindBinaries return when no
// PostgreSQL server binaries are found. Its text is the remedy shown to users.
var ErrNoBinaries = errors.New("install PostgreSQL server binaries (apt-get install -y postgresql) or set DATABASE_URL")

// versionedGlob is where distribution packages (Debian, Ubuntu) put the server
// binaries; the highest version wins.
const versionedGlob = "/usr/lib/postgresql/*/bin"

// binaries are the three server programs, all from one directory.
type binaries struct {
	dir      string
	initdb   string
	pgCtl    string
	postgres string
}

// FindBinaries returns the directory holding initdb, pg_ctl and postgres:
// the first PATH entry that has them (symlinks are resolved, so
// /usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl yields the
// latter), else the highest-versioned /usr/lib/postgresql/*/bin. The error
// wraps ErrNoBinaries.
func FindBinaries() (dir string, err error) {
	b, err := findBinaries("")
	return b.dir, err
}

// findBinaries searches only `only` when it is set (Options.BinDir), else PATH
// and then versionedGlob.
func findBinaries(only string) (binaries, error) {
	var candidates []string
	where := "PATH or " + versionedGlob
	if only != "" {
		candidates = []string{only}
		where = only
	} else {
		candidates = append(filepath.SplitList(os.Getenv("PATH")), versionedDirs(versionedGlob)...)
	}
	for _, d := range candidates {
		if d == "" {
			continue
		}
		if dir, ok := serverDir(d); ok {
			return binaries{
				dir:      dir,
				initdb:   filepath.Join(dir, "initdb"),
				pgCtl:    filepath.Join(dir, "pg_ctl"),
				postgres: filepath.Join(dir, "postgres"),
			}, nil
		}
	}
	return binaries{}, fmt.Errorf("embedded postgres: initdb, pg_ctl and postgres not found in %s: %w", where, ErrNoBinaries)
}

// serverDir reports the directory where pg_ctl found in d really lives, if
// initdb and postgres are next to it (pg_ctl runs the postgres beside itself).
func serverDir(d string) (string, bool) {
	pgCtl := filepath.Join(d, "pg_ctl")
	if !isExecutable(pgCtl) {
		return "", false
	}
	if real, err := filepath.EvalSymlinks(pgCtl); err == nil {
		rd := filepath.Dir(real)
		if isExecutable(filepath.Join(rd, "initdb")) && isExecutable(filepath.Join(rd, "postgres")) {
			return rd, true
		}
	}
	if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
		return d, true
	}
	return "", false
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// versionedDirs expands glob (one * for the version) highest version first.
func versionedDirs(glob string) []string {
	dirs, _ := filepath.Glob(glob)
	sort.SliceStable(dirs, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(dirs[j])), filepath.Base(filepath.Dir(dirs[i])))
	})
	return dirs
}

// versionLess compares dotted numeric versions ("9.6" < "15" < "15.2").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// majorVersion runs `postgres --version` and returns the major version in
// the form PG_VERSION files use ("15", or "9.6" before PostgreSQL 10).
func majorVersion(ctx context.Context, postgres string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postgres, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("embedded postgres: %s --version: %w", postgres, err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("embedded postgres: cannot parse %q from %s --version", strings.TrimSpace(string(out)), postgres)
	}
	if n, _ := strconv.Atoi(m[1]); n < 10 && m[2] != "" {
		return m[1] + "." + m[2], nil
	}
	return m[1], nil
}
