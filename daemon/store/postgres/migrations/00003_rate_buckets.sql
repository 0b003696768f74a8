-- keyfleet's PostgreSQL schema, version 3: the attempt limiter's token
-- buckets, shared by every keyfleetd on the database (daemon/ratelimit,
-- daemon/cluster). A bucket is one row: full_at is when it will hold all
-- its tokens again (the "theoretical arrival time" of the generic cell
-- rate algorithm); a bucket with full_at in the past is full and its row
-- can go. k is a keyed hash of the client address or target (no address
-- in a dump). They replace the fixed-window counters of version 1.

-- +goose Up
CREATE TABLE rate_buckets (
    k       bytea PRIMARY KEY,
    full_at timestamptz NOT NULL
);
CREATE INDEX rate_buckets_full_at ON rate_buckets (full_at);
DROP TABLE attempts;

-- +goose Down
CREATE TABLE attempts (
    k      text COLLATE "C" NOT NULL,
    window_start timestamptz NOT NULL,
    n      integer NOT NULL,
    PRIMARY KEY (k, window_start)
);
DROP TABLE rate_buckets;
