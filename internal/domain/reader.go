package domain

// Reader is a Postgres role's read access to one integration's schema, as
// the database's catalogs show it (not as recorded anywhere else): a role
// granted by `cioloader access grant` has Usage and Future, and Readable ==
// Relations. Anything short of that is a grant undone by hand.
type Reader struct {
	Role     string `json:"role"`
	CanLogin bool   `json:"can_login"`
	// Usage: USAGE on the schema, without which nothing in it is reachable.
	Usage bool `json:"usage"`
	// Future: SELECT on what cioloader creates in the schema from now on
	// (default privileges of cioloader's role).
	Future bool `json:"future"`
	// Readable of Relations: the schema's tables and views it can SELECT now.
	Readable  int `json:"readable"`
	Relations int `json:"relations"`
	// Complete: Usage, Future and every relation readable.
	Complete bool `json:"complete"`
}

// NewReader is a Postgres role made for reading, with the password it was
// given and a URL to connect with; shown this once, never stored.
type NewReader struct {
	Role     string `json:"role"`
	Password string `json:"password"`
	URL      string `json:"url"`
}
