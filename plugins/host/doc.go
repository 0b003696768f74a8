// Package host runs keyfleet's factor plugins for the daemon and hands
// each one back as an sdk.Factor, so the lifecycle treats a plugin kind as
// it treats a built-in one.
//
// What the host guarantees:
//
//   - Only pinned binaries run. Every file named keyfleet-plugin-* in the
//     configured folder must be listed in the config with its SHA-256;
//     the checksum is checked when the host loads it and again by
//     go-plugin (SecureConfig) each time the process is started, restarts
//     included. An unpinned, missing or modified binary is refused with a
//     log line and an Events.PluginRefused call, and the host carries on
//     with the others.
//   - Each plugin process gets a fresh mutual-TLS identity (go-plugin
//     AutoMTLS): only the process the host started can answer, and only the
//     host can call it. The go-plugin handshake is a compatibility check,
//     not a security control (see sdk.Handshake).
//   - Plugins run with an empty environment (plus GOMAXPROCS, from the
//     entry's procs, and what go-plugin needs), so
//     the daemon's keys in KEYFLEET_* variables never reach them.
//   - Every call has a timeout. A plugin that crashes or hangs is killed
//     and restarted; the call in flight fails with an error wrapping
//     sdk.ErrUnavailable (503 from the API) and changes nothing, and the
//     next call goes to the new process. Restarts are logged, counted in
//     keyfleet_plugin_restarts_total and reported through
//     Events.PluginRestarted.
//   - A plugin's log lines reach the daemon's slog logger with plugin=NAME.
//     The host itself logs names, paths, checksums and reasons, never a
//     request, a response, state or a session.
package host
