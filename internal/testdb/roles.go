package testdb

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Role creates a role on the test server, named prefix plus a random
// suffix, with attrs (e.g. "LOGIN CREATEROLE") and a password, and drops it
// when the test ends. Roles belong to the whole server, so every test makes
// its own. Create the roles a test uses before its databases: cleanups run
// last first, so the databases (where the roles have rights) go first.
func Role(t testing.TB, prefix, attrs string) (name, password string) {
	t.Helper()
	name = RoleName(t, prefix)
	password = "pw_" + randHex(12)
	if err := get(t).exec(context.Background(), "CREATE ROLE "+ident(name)+" "+attrs+" PASSWORD '"+password+"'"); err != nil {
		t.Fatalf("testdb: create role %s: %v", name, err)
	}
	return name, password
}

// RoleName is a unique role name for a role the code under test creates;
// the role is dropped, if it exists, when the test ends (see Role for the
// order).
func RoleName(t testing.TB, prefix string) string {
	t.Helper()
	s := get(t)
	name := prefix + "_" + randHex(4)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.exec(ctx, "DROP ROLE IF EXISTS "+ident(name)); err != nil {
			t.Errorf("testdb: drop role %s: %v", name, err)
		}
	})
	return name
}

// NewOwnedBy returns the URL, connecting as owner with password, of a fresh
// database that owner owns and nothing has migrated (the template's objects
// belong to the server's superuser), dropped when the test ends.
func NewOwnedBy(t testing.TB, owner, password string) string {
	t.Helper()
	s := get(t)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	name := dbName(t.Name())
	if err := s.exec(ctx, "CREATE DATABASE "+ident(name)+" OWNER "+ident(owner)); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.drop(ctx, name); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return As(DatabaseURL(s.adminURL, name), owner, password)
}

// As is databaseURL connecting as role with password instead.
func As(databaseURL, role, password string) string {
	if strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://") {
		if u, err := url.Parse(databaseURL); err == nil {
			u.User = url.UserPassword(role, password)
			return u.String()
		}
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }
	return databaseURL + " user=" + q(role) + " password=" + q(password)
}
