// Command keyfleet-plugin-totp is keyfleet's TOTP factor kind (package
// plugins/totp) as a plugin binary. keyfleetd starts it through its plugin
// host; it is not meant to be run by hand. Build it with `make build`
// (bin/keyfleet-plugin-totp) and pin its SHA-256 in keyfleetd's config.
// `keyfleet-plugin-totp --version` (or `version`) prints its build.
package main

import (
	"fmt"
	"os"

	"github.com/keyfleet/keyfleet/internal/version"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Printf("keyfleet-plugin-totp %s\n", version.Get())
		return
	}
	sdk.Serve(totp.Factor{})
}
