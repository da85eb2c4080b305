package postgres

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// readerSettings are the loader's connection settings a reader shares: where
// the server is and how to trust it. Its client certificate, application
// name and session settings are the loader's own and stay out.
var readerSettings = []string{"sslmode", "sslrootcert", "target_session_attrs", "connect_timeout"}

// ReaderURL is a postgres:// URL for role with password (none when empty)
// on the server and database of loaderURL (a URL or keyword/value string,
// as DATABASE_URL). Nothing else of loaderURL is kept: not its user or
// password, client certificate, application name or session settings.
func ReaderURL(loaderURL, role, password string) (string, error) {
	cfg, err := pgconn.ParseConfig(withoutTLS(loaderURL))
	if err != nil {
		return "", fmt.Errorf("reader URL: parse DATABASE_URL: %s", sanitize(err))
	}
	q := url.Values{}
	for _, k := range readerSettings {
		if v := setting(loaderURL, k); v != "" {
			q.Set(k, v)
		}
	}
	u := url.URL{Scheme: "postgres", User: url.User(role), Path: "/" + cfg.Database}
	if password != "" {
		u.User = url.UserPassword(role, password)
	}
	if strings.HasPrefix(cfg.Host, "/") { // a unix socket directory
		q.Set("host", cfg.Host)
		q.Set("port", strconv.Itoa(int(cfg.Port)))
	} else {
		u.Host = strings.Join(hostPorts(cfg), ",")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// hostPorts lists the servers of cfg in order, each once (pgconn lists a
// host once per TLS mode it tries).
func hostPorts(cfg *pgconn.Config) []string {
	hp := func(host string, port uint16) string {
		if strings.Contains(host, ":") { // IPv6
			host = "[" + host + "]"
		}
		return host + ":" + strconv.Itoa(int(port))
	}
	out := []string{hp(cfg.Host, cfg.Port)}
	for _, f := range cfg.Fallbacks {
		if s := hp(f.Host, f.Port); !strings.HasPrefix(f.Host, "/") && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

var kvTLS = regexp.MustCompile(`(?:^|\s)ssl[a-z_]*\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)

// withoutTLS is connString without its TLS settings, which pgconn.ParseConfig
// would act on (reading certificate files) when only the servers are wanted.
func withoutTLS(connString string) string {
	if base, query, ok := strings.Cut(connString, "?"); ok && isURL(connString) {
		v, _ := url.ParseQuery(query)
		for k := range v {
			if strings.HasPrefix(k, "ssl") {
				v.Del(k)
			}
		}
		return base + "?" + v.Encode()
	}
	if isURL(connString) {
		return connString
	}
	return kvTLS.ReplaceAllString(connString, " ")
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

var kvSetting = regexp.MustCompile(`(?:^|\s)([a-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)

// setting is the value of key in a connection string of either form ("" when unset).
func setting(connString, key string) string {
	if isURL(connString) {
		_, query, _ := strings.Cut(connString, "?")
		v, _ := url.ParseQuery(query)
		return v.Get(key)
	}
	for _, m := range kvSetting.FindAllStringSubmatch(connString, -1) {
		if m[1] == key {
			v := m[2]
			if strings.HasPrefix(v, "'") {
				v = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'"))
			}
			return v
		}
	}
	return ""
}
