package radius_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freeradius is a FreeRADIUS server (Debian freeradius) on a loopback
// port, configured only to proxy every Access-Request to keyfleet, as a
// site puts it in front of keyfleet to keep its NAS configuration in one
// place.
type freeradius struct {
	addr string
	cmd  *exec.Cmd
	log  string
}

// proxySecret is what the NAS and FreeRADIUS share; testSecret is what
// FreeRADIUS and keyfleet share.
const proxySecret = "nas-to-freeradius-secret-1234"

func startFreeRADIUS(t *testing.T, keyfleet string) *freeradius {
	t.Helper()
	bin := need(t, "freeradius", "freeradius")
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(keyfleet)
	f := &freeradius{addr: freeUDP(t), log: filepath.Join(dir, "radius.log")}
	_, listen, _ := net.SplitHostPort(f.addr)
	os.WriteFile(filepath.Join(dir, "dictionary"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "radiusd.conf"), []byte(fmt.Sprintf(freeradiusConf, dir, listen, proxySecret, host, port, testSecret)), 0o600)
	f.cmd = exec.Command(bin, "-f", "-d", dir, "-l", f.log)
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { f.cmd.Wait(); close(exited) }()
	t.Cleanup(func() { f.cmd.Process.Kill(); <-exited })
	// Ready when it answers a Status-Server (radclient's "status" command).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		cmd := exec.Command("radclient", "-t", "0.2", "-r", "1", f.addr, "status", proxySecret)
		cmd.Stdin = strings.NewReader("Message-Authenticator = 0x00\n")
		if out, _ := cmd.CombinedOutput(); strings.Contains(string(out), "Received Access-Accept") {
			return f
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(f.log)
			t.Fatalf("freeradius stopped; its log:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(f.log)
			t.Fatalf("freeradius did not answer within 15s; its log:\n%s", b)
		}
	}
}

func freeUDP(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// freeradiusConf: listen on a loopback port for one client, proxy every
// Access-Request to keyfleet (its own Message-Authenticator required on
// both legs), answer Status-Server itself.
const freeradiusConf = `
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = %[1]s
raddbdir = %[1]s
radacctdir = %[1]s
confdir = %[1]s
run_dir = %[1]s
db_dir = %[1]s
libdir = /usr/lib/freeradius
pidfile = %[1]s/radiusd.pid
name = freeradius
max_request_time = 10
cleanup_delay = 2
max_requests = 1024
hostname_lookups = no
proxy_requests = yes
log {
	destination = files
	file = %[1]s/radius.log
	auth = yes
}
security {
	status_server = yes
	allow_core_dumps = no
	allow_vulnerable_openssl = yes
}
client nas {
	ipaddr = 127.0.0.1
	secret = %[3]s
	require_message_authenticator = yes
}
proxy server {
	default_fallback = no
}
home_server keyfleet {
	type = auth
	ipaddr = %[4]s
	port = %[5]s
	secret = %[6]s
	response_window = 5
	zombie_period = 40
	status_check = status-server
	check_interval = 30
	num_answers_to_alive = 1
}
home_server_pool keyfleet {
	type = fail-over
	home_server = keyfleet
}
realm keyfleet {
	auth_pool = keyfleet
	nostrip
}
modules {
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %[2]s
	}
	authorize {
		update control {
			&Proxy-To-Realm := "keyfleet"
		}
	}
	authenticate {
	}
	post-proxy {
	}
}
`

func TestFreeRADIUSInFrontProxiesSignInsToKeyfleet(t *testing.T) {
	e := newEnv(t, nil)
	e.person("nina")
	e.person("omar")
	_, seed := e.totpFactor("nina", "Phone")
	e.totpFactor("omar", "Phone")
	_, omar2 := e.totpFactor("omar", "Tablet")
	fr := startFreeRADIUS(t, e.addr)
	if r := radclient(t, fr.addr, proxySecret, pap("nina", code(seed, 0))...); r.code != "Access-Accept" {
		b, _ := os.ReadFile(fr.log)
		t.Fatalf("a fresh code through FreeRADIUS: %s\n%s\nfreeradius log:\n%s", r.code, r.out, b)
	}
	r := radclient(t, fr.addr, proxySecret, pap("nina", code(seed, 0))...)
	if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "wrong user name or code") {
		t.Fatalf("a replay through FreeRADIUS: %s %v", r.code, r.attrs)
	}
	r = radclient(t, fr.addr, proxySecret, pap("omar", code(omar2, 0))...)
	if r.code != "Access-Challenge" || r.attrs["State"] == "" {
		t.Fatalf("two factors through FreeRADIUS: %s %v", r.code, r.attrs)
	}
	r = radclient(t, fr.addr, proxySecret, pap("omar", "2", "State = "+r.attrs["State"])...)
	r = radclient(t, fr.addr, proxySecret, pap("omar", code(omar2, 0), "State = "+r.attrs["State"])...)
	if r.code != "Access-Accept" {
		t.Fatalf("the challenge answered through FreeRADIUS: %s %v", r.code, r.attrs)
	}
	if ev := e.lastEvent("factor.verify"); ev.Extra["calling_station_id"] != "203.0.113.9" {
		t.Fatalf("the NAS's Calling-Station-Id did not reach the audit record: %+v", ev)
	}
}
