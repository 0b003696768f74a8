// Package version reports how a keyfleet binary was built: the module
// version and the version-control stamp that the go command writes into
// every binary (runtime/debug.ReadBuildInfo), and the Go toolchain. Every
// keyfleet binary prints it for --version and its version subcommand;
// keyfleetd also publishes it as the keyfleet_build_info metric and in
// /healthz?verbose=1.
//
// A build from a git checkout (make build, or go build with -buildvcs=auto
// or true) carries the commit, its time and whether the tree had changes;
// a build without git reads "(devel)" and no commit. Packagers that build
// from a source tarball set the version with
//
//	-ldflags "-X github.com/keyfleet/keyfleet/internal/version.override=v1.2.3"
package version
