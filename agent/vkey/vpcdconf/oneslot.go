package vpcdconf

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
)

// ErrNoOneSlotDriver: the vpcd driver is not the build this package knows
// how to make a one-slot copy of (another architecture or version of
// vsmartcard-vpcd).
var ErrNoOneSlotDriver = errors.New("cannot make a one-slot copy of the vpcd driver")

// DebianDriver is the vpcd driver of Debian's vsmartcard-vpcd.
const DebianDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// OneSlotDriver writes to dst (mode 0644) a copy of the vpcd driver at src
// that reports one slot per reader, as a build with --enable-vpcdslots=1
// would.
//
// Debian builds vpcd with two slots per reader (vsmartcard's configure
// option --enable-vpcdslots, default 2): every reader then shows an empty
// "… 00 01" slot beside the card, under the same name, and ykman counts two
// YubiKeys ("Multiple YubiKeys detected" without --device). A USB YubiKey
// shows one reader. The only change is the constant IFDHGetCapabilities
// answers for TAG_IFD_SLOTS_NUMBER. Each reader needs its own copy (a
// distinct path is a distinct dlopen), because the driver keeps its
// connections in static storage indexed by slot: two readers on one copy
// would share slot 0. Errors wrap ErrNoOneSlotDriver when src is not the
// build this package knows, or are the file system's.
func OneSlotDriver(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	off, err := slotsNumberOffset(b)
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrNoOneSlotDriver, src, err)
	}
	b[off] = 1
	return os.WriteFile(dst, b, 0o644)
}

// x86-64 code of Debian 12's vpcd 3.3 in IFDHGetCapabilities:
//
//	cmp  $0xfae,%rsi       ; Tag == TAG_IFD_SLOTS_NUMBER
//	...
//	movb $0x2,0x0(%rbp)    ; *Value = vicc_max_slots (folded: 2)
var (
	cmpSlotsTag = []byte{0x48, 0x81, 0xfe, 0xae, 0x0f, 0x00, 0x00}
	movTwo      = []byte{0xc6, 0x45, 0x00, 0x02}
)

// slotsNumberOffset finds, inside IFDHGetCapabilities, the file offset of
// the immediate 2 the driver answers TAG_IFD_SLOTS_NUMBER with. It checks
// the exported constant vicc_max_slots is 2 too.
func slotsNumberOffset(b []byte) (int, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	if f.Machine != elf.EM_X86_64 {
		return 0, fmt.Errorf("the driver is for %v, not x86-64", f.Machine)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return 0, err
	}
	fn, maxSlots, err := driverSymbols(syms)
	if err != nil {
		return 0, err
	}
	if v, err := byteAt(f, b, maxSlots.Value); err != nil || v != 2 {
		return 0, fmt.Errorf("vicc_max_slots is %d (%v), not 2", v, err)
	}
	code, start, err := symbolBytes(f, b, fn)
	if err != nil {
		return 0, err
	}
	i := bytes.Index(code, cmpSlotsTag)
	if i < 0 || bytes.Count(code, cmpSlotsTag) != 1 {
		return 0, errors.New("IFDHGetCapabilities does not compare the tag as expected")
	}
	j := bytes.Index(code[i:min(len(code), i+96)], movTwo)
	if j < 0 {
		return 0, errors.New("IFDHGetCapabilities does not answer the slot count as expected")
	}
	return start + i + j + len(movTwo) - 1, nil
}

func driverSymbols(syms []elf.Symbol) (fn, maxSlots elf.Symbol, err error) {
	var haveFn, haveMax bool
	for _, s := range syms {
		switch s.Name {
		case "IFDHGetCapabilities":
			fn, haveFn = s, true
		case "vicc_max_slots":
			maxSlots, haveMax = s, true
		}
	}
	if !haveFn || !haveMax {
		return fn, maxSlots, errors.New("IFDHGetCapabilities or vicc_max_slots is not exported")
	}
	return fn, maxSlots, nil
}

// fileOffset maps a virtual address to its offset in the file.
func fileOffset(f *elf.File, addr uint64) (int, error) {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && addr >= s.Addr && addr < s.Addr+s.Size {
			return int(s.Offset + addr - s.Addr), nil
		}
	}
	return 0, fmt.Errorf("address %#x is in no section of the file", addr)
}

func byteAt(f *elf.File, b []byte, addr uint64) (byte, error) {
	off, err := fileOffset(f, addr)
	if err != nil || off >= len(b) {
		return 0, fmt.Errorf("reading %#x: %v", addr, err)
	}
	return b[off], nil
}

func symbolBytes(f *elf.File, b []byte, s elf.Symbol) ([]byte, int, error) {
	off, err := fileOffset(f, s.Value)
	if err != nil {
		return nil, 0, err
	}
	end := off + int(s.Size)
	if s.Size == 0 || end > len(b) {
		return nil, 0, fmt.Errorf("%s has no usable size", s.Name)
	}
	return b[off:end], off, nil
}
