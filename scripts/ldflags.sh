#!/usr/bin/env bash
# Prints the -ldflags that stamp keyfleet's binaries with their commit
# (package internal/version). The go command stamps it itself only in a
# checkout whose .git is a folder, not in a git worktree, and not at all
# without git; these values stand in for its stamp where it has none (its
# own wins). VERSION, when set, replaces the version for every build (for
# packagers building from a source tarball).
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=github.com/keyfleet/keyfleet/internal/version
flags=()
if [ -n "${VERSION:-}" ]; then
  flags+=("-X $pkg.override=$VERSION")
fi
if rev=$(git rev-parse HEAD 2>/dev/null); then
  when=$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd HEAD)
  modified=false
  [ -z "$(git status --porcelain 2>/dev/null)" ] || modified=true
  flags+=("-X $pkg.stampRevision=$rev" "-X $pkg.stampTime=$when" "-X $pkg.stampModified=$modified")
fi
echo "${flags[*]:-}"
