-- keyfleet's PostgreSQL schema, version 6: pending pushes (daemon/push,
-- daemon/cluster), shared by every keyfleetd on the database, so that a
-- push begun on one keyfleetd reaches the companions connected to any of
-- them, the companion's answer may reach any of them, and the application
-- waiting on any of them learns the outcome. A pending push outlives a
-- restart and still runs out at its deadline.
--
-- k is a keyed hash of the verification id and factor id (the notices
-- sent on channel keyfleet_push carry only its hex); f a keyed hash of
-- the factor id, to list what waits for one companion; state is 0
-- pending, 1 being answered (or closed) by one keyfleetd, 2 decided, 3
-- its outcome taken; rec the push (ticket, user, delivery), sealed; out
-- the outcome, sealed. A push is claimed once (UPDATE … WHERE state = 0
-- … RETURNING), its outcome taken once, and rows are swept after expires.
--
-- push_seen remembers the companions' signed requests (a keyed hash of the
-- device and the signing time) until their time is out of the clock skew,
-- so that a captured request is refused by every keyfleetd, not only by
-- the one that saw it.

-- +goose Up
CREATE TABLE push_pending (
    k        bytea PRIMARY KEY,
    seq      bigserial NOT NULL,
    f        bytea NOT NULL,
    state    smallint NOT NULL DEFAULT 0,
    deadline timestamptz NOT NULL,
    claimed  timestamptz,
    expires  timestamptz NOT NULL,
    rec      bytea NOT NULL,
    out      bytea
);
CREATE INDEX push_pending_factor ON push_pending (f, seq) WHERE state = 0;
CREATE INDEX push_pending_deadline ON push_pending (deadline) WHERE state = 0;
CREATE INDEX push_pending_expires ON push_pending (expires);

CREATE TABLE push_seen (
    k       bytea PRIMARY KEY,
    expires timestamptz NOT NULL
);
CREATE INDEX push_seen_expires ON push_seen (expires);

-- +goose Down
DROP TABLE push_seen;
DROP TABLE push_pending;
