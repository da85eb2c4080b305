package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cioloader/cioloader/internal/testdb"
)

// binPath is the cioloader binary every test runs, built once by TestMain.
var binPath string

// binPrefix names the build directories; the pid in the name lets a later
// run remove the directories of test binaries that are gone (testdb.Main ends
// with os.Exit, so the directory of this run cannot be removed at its end).
const binPrefix = "cioloader-e2e-bin-"

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here starts real processes (servers, Postgres) and kills
		// them: minutes, not the quick loop's seconds. `make test` runs them.
		fmt.Println("e2e: skipped with -short (real processes); run `make test`")
		os.Exit(0)
	}
	// CIOLOADER_E2E_BINARY tests a binary built elsewhere (a release, or a
	// patched copy of the module) instead of building this one.
	binPath = os.Getenv("CIOLOADER_E2E_BINARY")
	if binPath == "" {
		dir, err := buildBinary()
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
		binPath = filepath.Join(dir, "cioloader")
	}
	testdb.Main(m)
}

// buildBinary runs `go build -o <tmpdir>/cioloader ./cmd/cioloader` from the
// module root. CIOLOADER_E2E_RACE=1 builds it with the race detector (a
// detected race then makes the process exit 66, which the SIGTERM tests catch).
func buildBinary() (string, error) {
	sweepStaleBuilds()
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go tool is not on PATH: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the cioloader module")
	}
	dir, err := os.MkdirTemp("", binPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", filepath.Join(dir, "cioloader")}
	if os.Getenv("CIOLOADER_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, goTool, append(args, "./cmd/cioloader")...)
	cmd.Dir = filepath.Dir(gomod)
	began := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/cioloader: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", filepath.Join(dir, "cioloader"), time.Since(began).Round(time.Millisecond))
	return dir, nil
}

// sweepStaleBuilds removes build directories whose test binary has exited.
func sweepStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binPrefix+"*"))
	for _, d := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), binPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}
