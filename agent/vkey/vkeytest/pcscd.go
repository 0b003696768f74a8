// Package vkeytest runs the real PC/SC stack for tests: a private pcscd
// whose readers are vpcd readers on loopback ports, one slot each (see
// vpcdconf.OneSlotDriver), and virtual YubiKeys (package vkey) plugged into
// them.
//
// Only one pcscd can run on a machine (it owns /run/pcscd/pcscd.comm), and
// go test runs packages in parallel processes, so StartPCSCD takes a
// machine-wide file lock that it holds until Stop: test binaries that need
// PC/SC take turns. Start one PCSCD per test binary, in TestMain.
package vkeytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/agent/vkey/vpcdconf"
)

// Paths of the Debian packages pcscd and vsmartcard-vpcd.
const (
	vpcdDriver = vpcdconf.DebianDriver
	pcscSocket = "/run/pcscd/pcscd.comm"
	lockPath   = "/tmp/keyfleet-pcscd.lock"
)

// ErrNotInstalled: pcscd or vpcd is missing (make test installs them).
var ErrNotInstalled = errors.New("pcscd and vsmartcard-vpcd are not installed (run make deps as root, or apt-get install pcscd vsmartcard-vpcd)")

// ErrBusy: another pcscd, not started by this package, owns the socket.
var ErrBusy = errors.New("another pcscd is running on this machine")

// ReaderName is the friendly name of the first reader, where a virtual
// YubiKey sits as a USB one does. ykman lists only readers whose name
// contains "Yubico" or "YubiKey".
const ReaderName = vpcdconf.YubiKeyReaderName

// SpareReaderName is the second reader's: not a YubiKey's, as a laptop's
// built-in smart card reader, so that a bare `ykman info` finds the one
// key in the first reader (ykman counts every Yubico-named reader, empty
// or not).
const SpareReaderName = "keyfleet vkey spare reader"

// Slot is one place for a card: its PC/SC reader name and the loopback
// port the card connects to.
type Slot struct {
	Reader string
	Port   int
}

// PCSCD is a private pcscd with two readers, Slots[0] named as a YubiKey's
// and Slots[1] a spare. Each reader has one slot (see
// vpcdconf.OneSlotDriver), so
// one plugged key shows one reader name, as a USB YubiKey does. When the
// one-slot copy of the driver cannot be made, the readers are the two
// slots of one stock vpcd reader, both Yubico-named, and OneSlot says why
// not.
type PCSCD struct {
	Slots []Slot
	// OneSlot is nil when every reader has one slot, else why not.
	OneSlot error
	cmd     *exec.Cmd
	dir     string
	lock    *os.File
	done    chan error
}

// StartPCSCD starts pcscd with its two readers and waits until its socket
// answers. Errors wrap ErrNotInstalled or ErrBusy, or are the start's.
func StartPCSCD() (*PCSCD, error) { return startPCSCD("") }

// StartPCSCDWith starts pcscd with the reader configuration in conf (a
// folder of reader entries, as pcscd -c takes; such as one `keyfleet-vkey
// reader setup --conf-dir` wrote), and waits until its socket answers.
// Slots is empty: the caller knows its readers. Errors as StartPCSCD's.
func StartPCSCDWith(conf string) (*PCSCD, error) {
	if conf == "" {
		return nil, errors.New("vkeytest: StartPCSCDWith needs a configuration folder")
	}
	return startPCSCD(conf)
}

func startPCSCD(conf string) (*PCSCD, error) {
	bin, err := exec.LookPath("pcscd")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/pcscd"); err != nil {
			return nil, ErrNotInstalled
		}
	}
	if _, err := os.Stat(vpcdDriver); err != nil {
		return nil, ErrNotInstalled
	}
	lock, err := takeLock()
	if err != nil {
		return nil, err
	}
	p := &PCSCD{lock: lock, done: make(chan error, 1)}
	if err := p.start(bin, conf); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func takeLock() (*os.File, error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", lockPath, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", lockPath, err)
	}
	return f, nil
}

// start runs pcscd with the readers in conf, or with its own two (see
// writeConfig) when conf is empty.
func (p *PCSCD) start(bin, conf string) error {
	if socketAnswers() {
		return ErrBusy
	}
	os.Remove(pcscSocket) // stale, from a pcscd that was killed
	if conf == "" {
		dir, err := os.MkdirTemp("", "keyfleet-pcscd-")
		if err != nil {
			return err
		}
		p.dir = dir
		if err := p.writeConfig(); err != nil {
			return err
		}
		conf = filepath.Join(dir, "conf")
	}
	p.cmd = exec.Command(bin, "-f", "-c", conf)
	if logPath := os.Getenv("KEYFLEET_PCSCD_LOG"); logPath != "" {
		// Debugging: pcscd logs every APDU and its reader activity.
		p.cmd.Args = append(p.cmd.Args, "-a", "-d")
		if f, err := os.Create(logPath); err == nil {
			p.cmd.Stdout, p.cmd.Stderr = f, f
			defer f.Close()
		}
	}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting pcscd: %w", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p.waitReady(5 * time.Second)
}

// writeConfig writes the reader configuration folder: two one-slot
// readers on their own copies of the driver, or one stock two-slot reader.
func (p *PCSCD) writeConfig() error {
	port, err := freePortPair()
	if err != nil {
		return err
	}
	conf := filepath.Join(p.dir, "conf")
	if err := os.Mkdir(conf, 0o700); err != nil {
		return err
	}
	p.Slots = []Slot{{ReaderName + " 00 00", port}, {SpareReaderName + " 00 00", port + 1}}
	for i, name := range []string{ReaderName, SpareReaderName} {
		lib := filepath.Join(p.dir, fmt.Sprintf("libifdvpcd-%d.so", i))
		if p.OneSlot = vpcdconf.OneSlotDriver(vpcdDriver, lib); p.OneSlot != nil {
			break
		}
		if err := writeReader(conf, i, name, lib, port+i); err != nil {
			return err
		}
	}
	if p.OneSlot == nil {
		return nil
	}
	os.RemoveAll(conf)
	if err := os.Mkdir(conf, 0o700); err != nil {
		return err
	}
	p.Slots = []Slot{{ReaderName + " 00 00", port}, {ReaderName + " 00 01", port + 1}}
	return writeReader(conf, 0, ReaderName, vpcdDriver, port)
}

func writeReader(dir string, i int, name, lib string, port int) error {
	conf := vpcdconf.Reader{Name: name, Driver: lib, Port: port}.Config()
	return os.WriteFile(filepath.Join(dir, fmt.Sprintf("vpcd-%d", i)), []byte(conf), 0o600)
}

// freePortPair finds a free port P with P+1 free too: the two readers
// listen on them (or a stock vpcd reader's two slots do).
func freePortPair() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return port, nil
	}
	return 0, errors.New("no free pair of loopback ports")
}

func socketAnswers() bool {
	c, err := net.DialTimeout("unix", pcscSocket, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (p *PCSCD) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("pcscd exited at start: %v", err)
		default:
		}
		if socketAnswers() {
			return nil
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a fixed wait
	}
	return errors.New("pcscd did not open its socket within 5 s")
}

// Stop ends pcscd, waits for it, removes its configuration and releases
// the machine-wide lock.
func (p *PCSCD) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
	if p.lock != nil {
		syscall.Flock(int(p.lock.Fd()), syscall.LOCK_UN)
		p.lock.Close()
	}
}

// Plug connects card to slot i (0 or 1), waits until vpcd has asked it
// for its ATR (the reader has seen it), and serves it until the returned
// function is called (which waits for the card to be unplugged).
//
// Waiting matters: a card plugged into a slot whose previous card left
// moments ago is otherwise reported present on the old, closed connection,
// and a client that connects then fails (piv-go's Open then leaks an
// exclusive handle).
func (p *PCSCD) Plug(card *vkey.Card, i int) (unplug func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	before := card.ATRRequests()
	go func() {
		defer close(done)
		card.Serve(ctx, fmt.Sprintf("127.0.0.1:%d", p.Slots[i].Port))
	}()
	unplug = func() {
		cancel()
		<-done
	}
	deadline := time.Now().Add(10 * time.Second)
	for card.ATRRequests() == before {
		if time.Now().After(deadline) {
			unplug()
			return nil, fmt.Errorf("vpcd did not ask the card in %q for its ATR within 10 s", p.Slots[i].Reader)
		}
		time.Sleep(2 * time.Millisecond) // polling interval
	}
	return unplug, nil
}
