// Command keyfleet-plugin-push is keyfleet's push factor kind (package
// plugins/push) as a plugin binary. keyfleetd starts it through its plugin
// host; it is not meant to be run by hand. Build it with `make build`
// (bin/keyfleet-plugin-push) and pin its SHA-256 in keyfleetd's config.
// `keyfleet-plugin-push --version` (or `version`) prints its build.
package main

import (
	"fmt"
	"os"

	"github.com/keyfleet/keyfleet/internal/version"
	"github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Printf("keyfleet-plugin-push %s\n", version.Get())
		return
	}
	sdk.Serve(push.Factor{})
}
