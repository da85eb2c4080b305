-- Which key claimed each flattened column. Two keys can clean to one column
-- name ("customer-id" and "customerid"); the first to create the column keeps
-- it, and a later key with another source is not mapped (SPEC 5: "colliding
-- with a column another key already claimed"). source is '' when the column
-- name spells the key path itself.
CREATE TABLE cioloader.column_sources (
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    column_name text NOT NULL,
    source      text NOT NULL,
    PRIMARY KEY (schema_name, table_name, column_name)
);
