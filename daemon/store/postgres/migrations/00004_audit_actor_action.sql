-- keyfleet's PostgreSQL schema, version 4: audit events by actor and by
-- action, through indexes (GET /v1/audit?actor=, ?action=), as by target.
-- The actor is an opaque id and the action a name from keyfleet's fixed
-- list, as the target column already holds an opaque id. Events written
-- before this version have empty columns until keyfleetd fills them at
-- its first start on this schema (postgres.Store.backfillAudit).

-- +goose Up
ALTER TABLE audit ADD COLUMN actor text COLLATE "C" NOT NULL DEFAULT '',
                  ADD COLUMN action text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX audit_actor ON audit (actor, seq) WHERE actor <> '';
CREATE INDEX audit_action ON audit (action, seq) WHERE action <> '';

-- +goose Down
DROP INDEX audit_action, audit_actor;
ALTER TABLE audit DROP COLUMN action, DROP COLUMN actor;
