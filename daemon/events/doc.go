// Package events streams keyfleet's audit log to outside systems: JSON lines
// files, syslog (RFC 5424 over UDP, TCP, TLS or the local socket), signed
// HTTPS webhooks, and a server-sent events (SSE) stream for dashboards.
//
// Sinks read from the audit log, never from in-process hooks. Each sink has
// its own persisted cursor (the last sequence number it handled), kept in a
// [CursorStore]; a sink advances its cursor only after its receiver accepted
// a batch. Delivery is therefore at-least-once and survives restarts: a
// daemon stopped mid-batch re-sends that batch when it starts again, so a
// receiver may see an event twice (de-duplicate on "seq") but never misses
// one. Each sink delivers in sequence order.
//
// The daemon calls [Manager.Notify] after each commit that appended audit
// events, so sinks wake at once; a poll interval is the fallback.
//
// A batch a receiver refuses is retried with exponential backoff and jitter.
// A sink configured with a maximum number of attempts (webhooks are, by
// default) then writes a [DeadLetter], reports it through [DeadLetterReporter]
// (the daemon records it as an audit event) and moves on; [Manager.Replay]
// re-delivers from any sequence number.
//
// The payload of every sink is [Event]: the audit record's wire form
// ([api.AuditEvent]) plus "schema" ([Schema]) and "severity" (see
// [Severity]). docs/events.md is the reference for receivers.
package events
