// Command confirm is the out-of-band example of docs/plugins.md: the user
// confirms a sign-in on a device that holds an Ed25519 key, which signs
// "yes", "no" or "not-me" for one verification. The whole factor is
// confirm.go, under 100 lines, with only the standard library and the
// SDK; keyfleetd's push host delivers, waits and enforces the deadline.
package main

import "github.com/keyfleet/keyfleet/plugins/sdk"

func main() { sdk.Serve(Confirm{}) }
