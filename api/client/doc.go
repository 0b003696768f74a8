// Package client is the Go client for keyfleetd's HTTP API, used by the
// keyfleet CLI and the workstation agent.
//
// A [Client] holds the daemon's address, a bearer token and the certificate
// authority to trust, and offers one method per route of docs/api-routes.txt.
// Bodies and answers are the wire types of package api.
//
// Errors come in two kinds that callers branch on with errors.As:
//   - *api.Problem: the daemon answered with a non-2xx status. Its Type is
//     stable per failure; [Slug] extracts the short name and helpers such as
//     [IsNotFound] test for it.
//   - *[TransportError]: the daemon could not be reached or its certificate
//     was not trusted. Its message says what to do about it.
//
// Actions that need a second approver answer 202 with an [api.Accepted]
// that names the approval request; nothing has happened yet.
package client
