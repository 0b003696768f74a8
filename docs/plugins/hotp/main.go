// Command hotp is the example factor plugin of docs/plugins.md: RFC 4226
// counter-based one-time codes (HMAC-SHA1, 6 digits). The whole factor is
// hotp.go, under 100 lines, with only the standard library and the SDK.
package main

import "github.com/keyfleet/keyfleet/plugins/sdk"

func main() { sdk.Serve(HOTP{}) }
