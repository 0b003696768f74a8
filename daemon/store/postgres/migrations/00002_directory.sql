-- Directory sources (daemon/core/directory.go), version 2.

-- +goose Up
-- A user's link to a directory source: k is the keyed hash (hex) of the
-- source and the entry's external id, rec the sealed user id. Written
-- with the user and verified on read against the user's own record, so an
-- entry left behind by a link that changed reads as not found.
CREATE TABLE directory_links (
    k   text COLLATE "C" PRIMARY KEY,
    rec bytea NOT NULL
);

-- Each source's last sync and incremental cursor, by source name.
CREATE TABLE directory_states (
    k   text COLLATE "C" PRIMARY KEY,
    rec bytea NOT NULL
);

-- A SCIM client's groups: k is source/group id.
CREATE TABLE directory_groups (
    k      text COLLATE "C" PRIMARY KEY,
    source text COLLATE "C" NOT NULL,
    rec    bytea NOT NULL
);
CREATE INDEX directory_groups_source ON directory_groups (source, k);

-- +goose Down
DROP TABLE directory_groups, directory_states, directory_links;
