-- keyfleet's PostgreSQL schema, version 5: the RADIUS listener's open
-- Access-Challenges, shared by every keyfleetd on the database
-- (daemon/radius, daemon/cluster), so that a NAS may send the answer to
-- a challenge to another keyfleetd than the one that asked, and a restart
-- keeps them. k is a keyed hash of the State handle the NAS holds (never
-- the handle: a dump cannot answer a challenge); u a keyed hash of the
-- user name, to bound the challenges one user may hold open; rec the
-- challenge (client, user, stage, factors, ticket), sealed. A row is
-- taken once (DELETE … RETURNING) and swept once expired.

-- +goose Up
CREATE TABLE radius_challenges (
    k       bytea PRIMARY KEY,
    u       bytea NOT NULL,
    expires timestamptz NOT NULL,
    rec     bytea NOT NULL
);
CREATE INDEX radius_challenges_expires ON radius_challenges (expires);
CREATE INDEX radius_challenges_user ON radius_challenges (u, expires);

-- +goose Down
DROP TABLE radius_challenges;
