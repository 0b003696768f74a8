// Package vpcdconf configures pcscd readers for vpcd (vsmartcard's virtual
// smart card reader) that show a virtual key as a USB YubiKey shows: one
// reader, one slot. It makes a one-slot copy of Debian's vpcd driver
// ([OneSlotDriver]) and the reader.conf entry that loads it ([Reader]).
// The test kit (agent/vkey/vkeytest) and `keyfleet-vkey reader setup` use
// it.
package vpcdconf
