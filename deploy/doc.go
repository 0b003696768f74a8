// Package deploy holds no Go code: deploy/ is the systemd unit, the Debian
// packaging (nfpm files and maintainer scripts), the Grafana dashboard and
// the Prometheus alert rules. Its tests build and install the package,
// start the unit's command line as the unit would, and check the rules
// with promtool.
package deploy
