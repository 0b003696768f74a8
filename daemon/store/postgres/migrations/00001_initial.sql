-- keyfleet's PostgreSQL schema, version 1.
--
-- Every record is a JSON document sealed with AES-256-GCM under a key
-- derived from the store key (column rec), bound to its table and key, so
-- a dump of the database shows no names, seeds or tokens. The columns
-- beside it are what look-ups, filters and ordering need: opaque ids,
-- states, kinds, and keyed hashes (HMAC-SHA-256) of usernames and device
-- serials. Keys use the "C" collation so that they sort byte by byte, as
-- the Badger store's keys do.

-- +goose Up
CREATE TABLE meta (
    k text COLLATE "C" PRIMARY KEY,
    v text NOT NULL
);

-- Each restore of a backup starts a new epoch; events from from_seq on
-- carry its id.
CREATE TABLE epochs (
    n        serial PRIMARY KEY,
    id       text NOT NULL UNIQUE,
    from_seq bigint NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    k         text COLLATE "C" PRIMARY KEY,
    name_hash bytea NOT NULL UNIQUE,
    name      bytea NOT NULL, -- the sealed username, for listing in name order
    status    text NOT NULL,
    rec       bytea NOT NULL
);

CREATE TABLE factors (
    k         text COLLATE "C" PRIMARY KEY,
    user_id   text COLLATE "C" NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    state     text NOT NULL,
    kind      text NOT NULL,
    rec       bytea NOT NULL
);
CREATE INDEX factors_user ON factors (user_id, k);
CREATE INDEX factors_device ON factors (device_id, k) WHERE device_id <> '';

CREATE TABLE devices (
    k           text COLLATE "C" PRIMARY KEY,
    vs_hash     bytea NOT NULL UNIQUE, -- vendor and serial
    serial_hash bytea NOT NULL,
    user_id     text COLLATE "C" NOT NULL,
    state       text NOT NULL,
    rec         bytea NOT NULL
);

CREATE TABLE enrolments (
    k       text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL,
    state   text NOT NULL,
    rec     bytea NOT NULL
);

CREATE TABLE tokens (
    k       text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL,
    rec     bytea NOT NULL
);

CREATE TABLE approvals (
    k            text COLLATE "C" PRIMARY KEY,
    state        text NOT NULL,
    requested_by text COLLATE "C" NOT NULL,
    rec          bytea NOT NULL
);

CREATE TABLE verifications (
    k       text COLLATE "C" PRIMARY KEY,
    expires timestamptz NOT NULL,
    rec     bytea NOT NULL
);
CREATE INDEX verifications_expires ON verifications (expires);

CREATE TABLE verifications_used (
    k       text COLLATE "C" PRIMARY KEY,
    expires timestamptz NOT NULL
);
CREATE INDEX verifications_used_expires ON verifications_used (expires);

CREATE TABLE recovery_codes (
    k   text COLLATE "C" PRIMARY KEY, -- user id
    rec bytea NOT NULL
);

CREATE TABLE recovery_cases (
    k       text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL,
    state   text NOT NULL,
    rec     bytea NOT NULL
);

CREATE TABLE access_passes (
    k         text COLLATE "C" PRIMARY KEY,
    code_hash bytea NOT NULL,
    rec       bytea NOT NULL
);
CREATE INDEX access_passes_hash ON access_passes (code_hash);

CREATE TABLE singletons ( -- break-glass verifier, current policy version
    k   text COLLATE "C" PRIMARY KEY,
    rec bytea NOT NULL
);

CREATE TABLE policy_versions (
    k   text COLLATE "C" PRIMARY KEY, -- the version, 10 digits
    rec bytea NOT NULL
);

CREATE TABLE policy_drafts (
    k   text COLLATE "C" PRIMARY KEY, -- approval id
    rec bytea NOT NULL
);

CREATE TABLE first_applied (
    k   text COLLATE "C" PRIMARY KEY, -- user id
    rec bytea NOT NULL
);

CREATE TABLE exemptions (
    user_id text COLLATE "C" NOT NULL,
    k       text COLLATE "C" NOT NULL,
    rec     bytea NOT NULL,
    PRIMARY KEY (user_id, k)
);

-- The policy facts index (see daemon/core/policy_facts.go): sub is '' for
-- the user's own record, 'a' for first-applied times, 'f'‖id for a factor
-- and 'x'‖id for an exemption.
CREATE TABLE policy_facts (
    user_id text COLLATE "C" NOT NULL,
    sub     text COLLATE "C" NOT NULL,
    rec     bytea NOT NULL,
    PRIMARY KEY (user_id, sub)
);

-- The audit chain: rec is the sealed record (daemon/audit Record.Marshal).
CREATE TABLE audit (
    seq    bigint PRIMARY KEY,
    target text COLLATE "C" NOT NULL,
    rec    bytea NOT NULL
);
CREATE INDEX audit_target ON audit (target, seq) WHERE target <> '';

-- One row, locked by every transaction that appends to the chain.
CREATE TABLE audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint NOT NULL,
    hash bytea NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE sink_cursors (
    sink  text COLLATE "C" PRIMARY KEY,
    seq   bigint NOT NULL,
    epoch text NOT NULL DEFAULT ''
);

CREATE TABLE dead_letters (
    sink text COLLATE "C" NOT NULL,
    at   bigint NOT NULL,
    rec  bytea NOT NULL,
    PRIMARY KEY (sink, at)
);

-- What several keyfleetd share (daemon/cluster): web sessions by the
-- SHA-256 of their cookie, and attempt counters by client and window.
CREATE TABLE web_sessions (
    k       bytea PRIMARY KEY,
    expires timestamptz NOT NULL,
    rec     bytea NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires);

CREATE TABLE attempts (
    k      text COLLATE "C" NOT NULL,
    window_start timestamptz NOT NULL,
    n      integer NOT NULL,
    PRIMARY KEY (k, window_start)
);

-- +goose Down
DROP TABLE attempts, web_sessions, dead_letters, sink_cursors, audit_head, audit, policy_facts,
    exemptions, first_applied, policy_drafts, policy_versions, singletons, access_passes,
    recovery_cases, recovery_codes, verifications_used, verifications, approvals, tokens,
    enrolments, devices, factors, users, epochs, meta;
