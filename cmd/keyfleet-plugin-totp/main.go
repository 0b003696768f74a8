// Command keyfleet-plugin-totp is keyfleet's TOTP factor kind (package
// plugins/totp) as a plugin binary. keyfleetd starts it through its plugin
// host; it is not meant to be run by hand. Build it with `make build`
// (bin/keyfleet-plugin-totp) and pin its SHA-256 in keyfleetd's config.
package main

import (
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

func main() { sdk.Serve(totp.Factor{}) }
