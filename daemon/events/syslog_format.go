package events

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// facilities are the RFC 5424 §6.2.1 facility codes.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// syslogSeverity maps an event severity to an RFC 5424 §6.2.1 severity:
// high → 2 (critical), warning → 4, notice → 5, info → 6.
var syslogSeverity = map[string]int{SeverityHigh: 2, SeverityWarning: 4, SeverityNotice: 5, SeverityInfo: 6}

// SD-IDs of the structured data. 32473 is the private enterprise number
// RFC 5612 reserves for documentation; keyfleet has none of its own.
const (
	sdEvent = "keyfleet@32473"
	sdExtra = "keyfleet-extra@32473"
)

const rfc5424Time = "2006-01-02T15:04:05.000000Z07:00" // §6.2.3: at most 6 fractional digits

// syslogFormatter writes RFC 5424 messages (§6):
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ELEMENT…] BOM JSON
//
// MSGID is the action; the first SD-ELEMENT carries the event's fields, the
// second its "extra" map; MSG is the whole event as JSON (UTF-8, §6.4).
type syslogFormatter struct {
	facility int
	host     string
	app      string
	procID   string
}

func (f syslogFormatter) format(b *bytes.Buffer, ev Event, withMsg bool) error {
	pri := f.facility*8 + syslogSeverity[ev.Severity]
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(pri))
	b.WriteString(">1 ")
	b.WriteString(ev.Time.UTC().Format(rfc5424Time))
	for _, field := range []struct {
		v   string
		max int
	}{{f.host, 255}, {f.app, 48}, {f.procID, 128}, {ev.Action, 32}} {
		b.WriteByte(' ')
		b.WriteString(headerField(field.v, field.max))
	}
	b.WriteByte(' ')
	writeSD(b, sdEvent, eventParams(ev))
	if len(ev.Extra) > 0 {
		writeSD(b, sdExtra, extraParams(ev.Extra))
	}
	if !withMsg {
		return nil
	}
	b.WriteString(" \xEF\xBB\xBF") // BOM: MSG is UTF-8 (§6.4)
	enc := json.NewEncoder(noNewline{b})
	enc.SetEscapeHTML(false)
	return enc.Encode(ev)
}

// noNewline drops the newline json.Encoder ends with.
type noNewline struct{ b *bytes.Buffer }

func (w noNewline) Write(p []byte) (int, error) {
	w.b.Write(bytes.TrimSuffix(p, []byte("\n")))
	return len(p), nil
}

type param struct{ name, value string }

func eventParams(ev Event) []param {
	ps := []param{
		{"schema", ev.Schema}, {"seq", strconv.FormatUint(ev.Seq, 10)}, {"time", ev.Time.UTC().Format(time.RFC3339Nano)},
		{"action", ev.Action}, {"severity", ev.Severity},
		{"actor_id", ev.Actor.ID}, {"actor_name", ev.Actor.Name}, {"actor_auth", ev.Actor.Auth}, {"actor_token_id", ev.Actor.TokenID},
	}
	if a := ev.Approver; a != nil {
		ps = append(ps, param{"approver_id", a.ID}, param{"approver_name", a.Name}, param{"approver_auth", a.Auth})
	}
	ps = append(ps,
		param{"target_type", ev.Target.Type}, param{"target_id", ev.Target.ID}, param{"target_name", ev.Target.Name},
		param{"reason", ev.Reason}, param{"request_id", ev.RequestID}, param{"source", ev.Source},
		param{"prev_hash", ev.PrevHash}, param{"hash", ev.Hash})
	return ps
}

func extraParams(extra map[string]string) []param {
	ps := make([]param, 0, len(extra))
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		ps = append(ps, param{sdName(k), extra[k]})
	}
	return ps
}

// writeSD writes one SD-ELEMENT (§6.3), leaving out empty values.
func writeSD(b *bytes.Buffer, id string, ps []param) {
	b.WriteByte('[')
	b.WriteString(id)
	for _, p := range ps {
		if p.value == "" {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(p.name)
		b.WriteString(`="`)
		sdEscape.WriteString(b, strings.ToValidUTF8(p.value, "\uFFFD"))
		b.WriteByte('"')
	}
	b.WriteByte(']')
}

// sdEscape escapes '"', '\' and ']' in PARAM-VALUE (§6.3.3).
var sdEscape = strings.NewReplacer(`"`, `\"`, `\`, `\\`, `]`, `\]`)

// sdName makes a valid SD-NAME (§6.3.3): printable US-ASCII except '=',
// ' ', ']' and '"', at most 32 characters.
func sdName(s string) string {
	out := []byte(headerField(s, 32))
	for i, c := range out {
		if c == '=' || c == ']' || c == '"' {
			out[i] = '_'
		}
	}
	return string(out)
}

// headerField makes a header field (§6.2): printable US-ASCII, at most max
// characters, "-" (NILVALUE) when empty.
func headerField(s string, max int) string {
	if s == "" {
		return "-"
	}
	out := []byte(s)
	for i, c := range out {
		if c < 33 || c > 126 {
			out[i] = '_'
		}
	}
	if len(out) > max {
		out = out[:max]
	}
	return string(out)
}
