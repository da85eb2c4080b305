// Package config is cioloader's one configuration struct: every field has its
// environment variable, default and description, read from the environment
// and then from flags (flags win). The README's table is checked against it.
package config

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/cioloader/cioloader/internal/budget"
)

// Config is everything the server and the CLI can be told.
type Config struct {
	DatabaseURL    string        `env:"DATABASE_URL" flag:"database-url" desc:"Postgres URL; empty starts an embedded Postgres under the data directory"`
	Addr           string        `env:"CIOLOADER_ADDR" flag:"addr" default:":8080" desc:"HTTP listen address"`
	PublicURL      string        `env:"CIOLOADER_PUBLIC_URL" flag:"public-url" desc:"base of generated webhook URLs (default http://localhost plus the listen port)"`
	AdminToken     string        `env:"CIOLOADER_ADMIN_TOKEN" flag:"admin-token" desc:"bearer token for the admin API and page, at least 32 characters; with the embedded database and none set, one is generated and printed once"`
	DataDir        string        `env:"CIOLOADER_DATA_DIR" flag:"data-dir" default:".cioloader" desc:"where the embedded Postgres lives (DATA_DIR/pg)"`
	MaxBodyBytes   int64         `env:"CIOLOADER_MAX_BODY_BYTES" flag:"max-body-bytes" default:"20971520" desc:"largest accepted request body (413 above it)"`
	MaxEvents      int           `env:"CIOLOADER_MAX_EVENTS" flag:"max-events" default:"10000" desc:"most events in one request (400 above it)"`
	InflightBytes  int64         `env:"CIOLOADER_MAX_INFLIGHT_BYTES" flag:"max-inflight-bytes" default:"671088640" desc:"memory ingest may hold for requests in flight, charged as body bytes arrive (503 above it)"`
	MemoryFactor   int64         `env:"CIOLOADER_MEMORY_FACTOR" flag:"memory-factor" default:"20" desc:"budget charged per body byte read: the body, its decoded and prepared events and their encoding for Postgres (measured ~20)"`
	IntegrationPct int64         `env:"CIOLOADER_INTEGRATION_SHARE" flag:"integration-share" default:"75" desc:"percent of CIOLOADER_MAX_INFLIGHT_BYTES one integration may hold, so others always have the rest"`
	BodyTimeout    time.Duration `env:"CIOLOADER_BODY_TIMEOUT" flag:"body-timeout" default:"5s" desc:"time to receive a request body once its headers are in (503 or a closed connection past it)"`
	CommitDeadline time.Duration `env:"CIOLOADER_COMMIT_DEADLINE" flag:"commit-deadline" default:"3s" desc:"time a request may wait for its commit before it gets 503"`
	BatchWorkers   int           `env:"CIOLOADER_BATCH_WORKERS" flag:"batch-workers" default:"2" desc:"group-commit transactions in flight at most; beyond the first, only while the one in flight is slow (see CIOLOADER_BATCH_STALL)"`
	BatchGrowTo    int           `env:"CIOLOADER_BATCH_GROW_TO" flag:"batch-grow-to" default:"32" desc:"under load, a group commit with fewer events waits (up to CIOLOADER_BATCH_LINGER) for more; 0 = never wait"`
	BatchLinger    time.Duration `env:"CIOLOADER_BATCH_LINGER" flag:"batch-linger" default:"2ms" desc:"longest wait for a group commit to grow to CIOLOADER_BATCH_GROW_TO events (only under load: when its first request was already queued; a request reaching an idle server never waits). Shorter than CIOLOADER_BATCH_STALL"`
	BatchStall     time.Duration `env:"CIOLOADER_BATCH_STALL" flag:"batch-stall" default:"50ms" desc:"a group commit waits this long for the one in flight to end (taking every request that queued meanwhile) before it starts alongside it"`
	BatchMaxEvents int           `env:"CIOLOADER_BATCH_MAX_EVENTS" flag:"batch-max-events" default:"500" desc:"most events in one group-commit transaction"`
	QueueLen       int           `env:"CIOLOADER_QUEUE_LEN" flag:"queue-len" default:"10000" desc:"requests waiting for a writer before new ones get 503"`
	DBMaxConns     int           `env:"CIOLOADER_DB_MAX_CONNS" flag:"db-max-conns" default:"16" desc:"Postgres connection pool size"`
	SigMaxAge      time.Duration `env:"CIOLOADER_SIGNATURE_MAX_AGE" flag:"signature-max-age" default:"192h" desc:"oldest accepted X-CIO-Timestamp (Customer.io retries for 7 days)"`
	SigMaxFuture   time.Duration `env:"CIOLOADER_SIGNATURE_MAX_FUTURE" flag:"signature-max-future" default:"300s" desc:"furthest-future accepted X-CIO-Timestamp"`
	MaxDepth       int           `env:"CIOLOADER_MAX_DEPTH" flag:"max-depth" default:"10" desc:"deepest nesting flattened into columns"`
	MaxKeys        int           `env:"CIOLOADER_MAX_KEYS" flag:"max-keys" default:"1000" desc:"most values flattened from one event"`
	MaxColumns     int           `env:"CIOLOADER_MAX_COLUMNS" flag:"max-columns" default:"1000" desc:"columns per table; new keys past it stay in _sdc_raw"`
	MaxSubtables   int           `env:"CIOLOADER_MAX_SUBTABLES" flag:"max-subtables" default:"100" desc:"array subtables per schema; arrays past it stay in _sdc_raw"`
	TokenCacheTTL  time.Duration `env:"CIOLOADER_TOKEN_CACHE_TTL" flag:"token-cache-ttl" default:"1s" desc:"how long a webhook token look-up is trusted; revocations reach every replica at once by NOTIFY, this bounds a missed one"`
	TombstoneTTL   time.Duration `env:"CIOLOADER_ERASURE_TOMBSTONE_TTL" flag:"erasure-tombstone-ttl" default:"192h" desc:"how long an erased person's hashed identifiers keep their re-delivered events out (Customer.io retries for 7 days)"`
	DebugAddr      string        `env:"CIOLOADER_DEBUG_ADDR" flag:"debug-addr" desc:"serve Go pprof on this address (e.g. 127.0.0.1:6060); empty = off"`
	LogLevel       string        `env:"CIOLOADER_LOG_LEVEL" flag:"log-level" default:"info" desc:"debug, info, warn or error"`
	LogFormat      string        `env:"CIOLOADER_LOG_FORMAT" flag:"log-format" default:"auto" desc:"json, text, or auto (text on a terminal, JSON otherwise)"`
}

// Field describes one setting, for flags, errors and the README table.
type Field struct {
	Env, Flag, Default, Desc string
	value                    reflect.Value
}

// Fields lists c's settings in declaration order.
func (c *Config) Fields() []Field {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	out := make([]Field, t.NumField())
	for i := range out {
		f := t.Field(i)
		out[i] = Field{Env: f.Tag.Get("env"), Flag: f.Tag.Get("flag"), Default: f.Tag.Get("default"), Desc: f.Tag.Get("desc"), value: v.Field(i)}
	}
	return out
}

// Load fills c from defaults, then the environment (getenv), then the flags
// registered on fs and parsed from args. One clear error names the culprit.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (*Config, error) {
	c := &Config{}
	err := c.fill(getenv, func(f Field) { fs.Var(fieldValue{f}, f.Flag, f.usage()) })
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

// Defaults is the configuration with every field at its default: no
// environment, no flags. Tests that need realistic settings start here.
func Defaults() *Config {
	c := &Config{}
	for _, f := range c.Fields() {
		if err := f.set(f.Default); err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", f.Env, err))
		}
	}
	return c
}

// Bind fills c from defaults, then the environment (getenv), and registers a
// GNU-style flag for each setting on fs, so that flags parsed later win. It
// registers every flag even when it returns the first bad environment value.
// Call Validate once fs is parsed.
func (c *Config) Bind(fs *pflag.FlagSet, getenv func(string) string) error {
	return c.fill(getenv, func(f Field) {
		fs.Var(fieldValue{f}, f.Flag, f.usage())
		fs.Lookup(f.Flag).DefValue = f.Default // the tag's, not the environment's
	})
}

// fill sets every field to its default, then its environment value, and
// calls register on it. It returns the first bad value.
func (c *Config) fill(getenv func(string) string, register func(Field)) error {
	var first error
	for _, f := range c.Fields() {
		err := f.set(f.Default)
		if err != nil {
			err = fmt.Errorf("default of %s: %w", f.Env, err)
		} else if v := getenv(f.Env); v != "" {
			if err = f.set(v); err != nil {
				err = fmt.Errorf("%s=%q: %w", f.Env, v, err)
			}
		}
		if first == nil {
			first = err
		}
		register(f)
	}
	return first
}

func (f Field) usage() string { return f.Desc + " ($" + f.Env + ")" }

// FromEnv is Load with the process environment and no flags.
func FromEnv() (*Config, error) {
	return Load(flag.NewFlagSet("cioloader", flag.ContinueOnError), nil, os.Getenv)
}

// minAdminToken is the shortest accepted admin token (SPEC 10.12).
const minAdminToken = 32

// Validate checks the settings together; the error names the variable.
func (c *Config) Validate() error {
	switch {
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("CIOLOADER_MAX_BODY_BYTES must be positive")
	case c.MaxEvents <= 0:
		return fmt.Errorf("CIOLOADER_MAX_EVENTS must be positive")
	case c.MemoryFactor < 1:
		return fmt.Errorf("CIOLOADER_MEMORY_FACTOR must be at least 1")
	case c.IntegrationPct < 1 || c.IntegrationPct > 100:
		return fmt.Errorf("CIOLOADER_INTEGRATION_SHARE must be a percentage between 1 and 100")
	case c.IntegrationShare() < c.LargestCharge():
		return fmt.Errorf("CIOLOADER_MAX_INFLIGHT_BYTES × CIOLOADER_INTEGRATION_SHARE %% (%d) must hold one largest request: CIOLOADER_MAX_BODY_BYTES × CIOLOADER_MEMORY_FACTOR + CIOLOADER_MAX_EVENTS × %d (%d)",
			c.IntegrationShare(), budget.EventBytes, c.LargestCharge())
	case c.BodyTimeout <= 0 || c.BodyTimeout > 30*time.Second:
		return fmt.Errorf("CIOLOADER_BODY_TIMEOUT must be between 0 and 30s (the server's read timeout)")
	case c.CommitDeadline <= 0 || c.CommitDeadline > 30*time.Second:
		return fmt.Errorf("CIOLOADER_COMMIT_DEADLINE must be between 0 and 30s (Customer.io waits 4s)")
	case c.AdminToken != "" && utf8.RuneCountInString(c.AdminToken) < minAdminToken:
		return fmt.Errorf("CIOLOADER_ADMIN_TOKEN must be at least %d characters (it has %d): generate one with `openssl rand -hex 32`", minAdminToken, utf8.RuneCountInString(c.AdminToken))
	case c.BatchGrowTo < 0 || c.BatchLinger < 0 || c.BatchLinger >= c.BatchStall:
		return fmt.Errorf("CIOLOADER_BATCH_GROW_TO and CIOLOADER_BATCH_LINGER must not be negative, and the linger must be shorter than CIOLOADER_BATCH_STALL (a lingering batch would start a second transaction)")
	case c.BatchStall <= 0 || c.BatchStall >= c.CommitDeadline:
		return fmt.Errorf("CIOLOADER_BATCH_STALL must be positive and shorter than CIOLOADER_COMMIT_DEADLINE")
	case c.TokenCacheTTL <= 0:
		return fmt.Errorf("CIOLOADER_TOKEN_CACHE_TTL must be positive")
	case c.TombstoneTTL <= 0:
		return fmt.Errorf("CIOLOADER_ERASURE_TOMBSTONE_TTL must be positive")
	case c.DBMaxConns < 2:
		return fmt.Errorf("CIOLOADER_DB_MAX_CONNS must be at least 2")
	case c.SigMaxAge <= 0 || c.SigMaxFuture <= 0:
		return fmt.Errorf("CIOLOADER_SIGNATURE_MAX_AGE and CIOLOADER_SIGNATURE_MAX_FUTURE must be positive")
	case c.MaxDepth <= 0 || c.MaxKeys <= 0:
		return fmt.Errorf("CIOLOADER_MAX_DEPTH and CIOLOADER_MAX_KEYS must be positive")
	case c.MaxColumns <= 0:
		return fmt.Errorf("CIOLOADER_MAX_COLUMNS must be positive")
	case c.MaxSubtables < 0:
		return fmt.Errorf("CIOLOADER_MAX_SUBTABLES must not be negative (0 keeps every array in _sdc_raw only)")
	case c.MaxColumns > 1500:
		return fmt.Errorf("CIOLOADER_MAX_COLUMNS must stay below Postgres's 1,600-column limit (at most 1500)")
	case c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://"):
		return fmt.Errorf("CIOLOADER_PUBLIC_URL must start with http:// or https://")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("CIOLOADER_LOG_LEVEL must be debug, info, warn or error, not %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text", "auto":
	default:
		return fmt.Errorf("CIOLOADER_LOG_FORMAT must be json, text or auto, not %q", c.LogFormat)
	}
	return nil
}

// IntegrationShare is the most one integration may hold of the in-flight budget.
func (c *Config) IntegrationShare() int64 { return c.InflightBytes / 100 * c.IntegrationPct }

// LargestCharge is what the largest acceptable request is charged.
func (c *Config) LargestCharge() int64 {
	return c.MaxBodyBytes*c.MemoryFactor + int64(c.MaxEvents)*budget.EventBytes
}

// BaseURL is where generated webhook URLs point.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	port := c.Addr[strings.LastIndex(c.Addr, ":")+1:]
	return "http://localhost:" + port
}

func (f Field) set(s string) error {
	switch p := f.value.Addr().Interface().(type) {
	case *string:
		*p = s
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("not a whole number")
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number")
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration such as 3s or 192h")
		}
		*p = d
	}
	return nil
}

// fieldValue adapts a Field to flag.Value.
type fieldValue struct{ f Field }

func (v fieldValue) String() string {
	if !v.f.value.IsValid() {
		return ""
	}
	return fmt.Sprint(v.f.value.Interface())
}

func (v fieldValue) Set(s string) error { return v.f.set(s) }

// Type names the value's kind in GNU-style help (pflag.Value).
func (v fieldValue) Type() string {
	if v.f.value.Type() == reflect.TypeFor[time.Duration]() {
		return "duration"
	}
	return v.f.value.Kind().String()
}
