package vkey

const swMemoryFailure = 0x6581

// Transmit processes one command APDU and returns the response APDU
// (data, then SW1 SW2). It never fails: errors are status words.
func (c *Card) Transmit(apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apdus.Add(1)
	// The card keeps command data (chaining, stored objects) after this
	// call returns, and callers reuse their buffers: own a copy.
	cmd, ok := parseCommand(append([]byte(nil), apdu...))
	if !ok {
		return status(swWrongLength).bytes()
	}
	if cmd.ins == insGetResponse && cmd.cla&^claChainingBit == 0 {
		return c.getResponse(cmd)
	}
	c.sess.pending = nil
	if cmd.cla&^(claChainingBit|0x03|claProprietary) != 0 { // 0x03: logical channel bits, ignored
		return status(swClaNotSupported).bytes()
	}
	cmd, done := c.chain(cmd)
	if done {
		return status(swOK).bytes()
	}
	resp := c.dispatch(cmd)
	c.sess.verifiedLast = cmd.ins == insVerify && len(cmd.data) > 0 && resp.sw == swOK
	c.logCommand(cmd, resp)
	if c.dirty {
		c.dirty = false
		if err := c.opts.Store.Save(c.st); err != nil {
			c.opts.Logger.Error("saving the card state", "err", err)
			return status(swMemoryFailure).bytes()
		}
	}
	return c.frame(cmd, resp)
}

// chain collects chained commands (CLA bit 0x10). It reports true while
// the chain goes on; the last command gets the whole data.
func (c *Card) chain(cmd command) (command, bool) {
	prev := c.sess.chain
	c.sess.chain = nil
	same := prev != nil && prev.ins == cmd.ins && prev.p1 == cmd.p1 && prev.p2 == cmd.p2
	if same {
		cmd.data = append(prev.data, cmd.data...)
	}
	if cmd.cla&claChainingBit != 0 {
		cmd.cla &^= claChainingBit
		c.sess.chain = &cmd
		return cmd, true
	}
	return cmd, false
}

// frame cuts a long answer to a short command into 256-byte pieces with
// 61xx, to be fetched with GET RESPONSE (ISO/IEC 7816-4 §5.3.4).
func (c *Card) frame(cmd command, resp response) []byte {
	limit := shortLeMax
	if cmd.extended {
		limit = 65536
	}
	if cmd.le > 0 && cmd.le < limit {
		limit = cmd.le
	}
	if len(resp.data) <= limit || resp.sw != swOK {
		return resp.bytes()
	}
	c.sess.pending = resp.data[limit:]
	return response{data: resp.data[:limit], sw: moreSW(len(c.sess.pending))}.bytes()
}

func moreSW(n int) uint16 {
	if n >= 256 {
		return swMoreData
	}
	return swMoreData | uint16(n)
}

func (c *Card) getResponse(cmd command) []byte {
	if len(c.sess.pending) == 0 {
		return status(swConditions).bytes()
	}
	n := shortLeMax
	if cmd.le > 0 && cmd.le < n {
		n = cmd.le
	}
	if cmd.extended {
		n = len(c.sess.pending)
	}
	n = min(n, len(c.sess.pending))
	out := c.sess.pending[:n]
	c.sess.pending = c.sess.pending[n:]
	if len(c.sess.pending) == 0 {
		c.sess.pending = nil
		return ok(out).bytes()
	}
	return response{data: out, sw: moreSW(len(c.sess.pending))}.bytes()
}

// logCommand logs the instruction and status only: command data carries
// PINs, PUKs and management keys.
func (c *Card) logCommand(cmd command, resp response) {
	c.opts.Logger.Debug("apdu", "applet", c.sess.applet, "ins", hexByte(cmd.ins),
		"p1", hexByte(cmd.p1), "p2", hexByte(cmd.p2), "lc", len(cmd.data), "sw", resp.sw)
}

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}

func (c *Card) dispatch(cmd command) response {
	if cmd.ins == insSelect {
		return c.selectApplet(cmd)
	}
	switch c.sess.applet {
	case appletPIV:
		return c.piv(cmd)
	case appletMgmt:
		return c.mgmt(cmd)
	case appletOTP:
		return c.otp(cmd)
	case appletFIDO:
		return c.fido(cmd)
	}
	return status(swConditions)
}
