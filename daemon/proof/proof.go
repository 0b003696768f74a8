package proof

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
)

// Actions that need a proof. The names are the audit actions they lead to,
// so a reader of the trail sees the same words.
const (
	ApprovalApprove    = "approval.approve"
	ApprovalDeny       = "approval.deny"
	PolicyApply        = "policy.apply"
	BreakGlassRotate   = "breakglass.rotate"
	BreakGlassShare    = "breakglass.share"
	PassIssue          = "pass.issue"
	TokenCreate        = "token.create"
	TokenLogin         = "token.login"
	FactorAdd          = "factor.add"
	FactorRemove       = "factor.remove"
	RecoveryCodesRegen = "recovery_codes.regenerate"
)

// Strength is what a proof must be made with.
type Strength int

const (
	// Hardware: one of the person's own active PIV or FIDO2 factors.
	Hardware Strength = iota + 1
	// SecondFactor: a hardware factor when the person has one, else any of
	// their active factors (an authenticator app's code).
	SecondFactor
)

// Requirement says how an action is proved and, in plain words, what the
// proof allows.
type Requirement struct {
	Strength Strength
	Words    string
}

// Catalogue lists every action that needs a fresh proof.
var Catalogue = map[string]Requirement{
	ApprovalApprove:    {Hardware, "approve a request (and carry it out)"},
	ApprovalDeny:       {Hardware, "deny a request"},
	PolicyApply:        {Hardware, "apply or roll back a policy version"},
	BreakGlassRotate:   {Hardware, "ask for a new break-glass credential"},
	BreakGlassShare:    {Hardware, "collect your own share of the break-glass credential"},
	PassIssue:          {Hardware, "issue a temporary access pass for an account with a role beyond user"},
	TokenCreate:        {Hardware, "create an API token that acts as yourself"},
	TokenLogin:         {Hardware, "sign in from the command line (a new token of your own)"},
	FactorAdd:          {SecondFactor, "add a factor to your account when it already has one"},
	FactorRemove:       {SecondFactor, "remove one of your own factors"},
	RecoveryCodesRegen: {SecondFactor, "make new recovery codes"},
}

// Known reports whether action is in the catalogue.
func Known(action string) bool {
	_, ok := Catalogue[action]
	return ok
}

// Actions lists the catalogue's actions in order.
func Actions() []string {
	out := make([]string, 0, len(Catalogue))
	for a := range Catalogue {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Binding is one action a proof is for.
type Binding struct {
	// Action is a catalogue action.
	Action string
	// Subject is the record acted on: an approval id, a user id, a factor
	// id, a recovery case id, a policy document's digest.
	Subject string
	// Details are what the action will do, in words the daemon derives
	// from the request or the stored record. Keys and values are free
	// text; order does not matter.
	Details map[string]string
}

// domain separates keyfleet's proof digests from every other use of the
// keys; v1 is the encoding below.
const domain = "keyfleet-proof-v1"

// Digest is the SHA-256 of the binding's canonical encoding: the domain,
// action, subject and each detail key and value in key order, each as a
// 4-byte big-endian length and its bytes.
func (b Binding) Digest() [32]byte {
	h := sha256.New()
	field := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(domain)
	field(b.Action)
	field(b.Subject)
	keys := make([]string, 0, len(b.Details))
	for k := range b.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(k)
		field(b.Details[k])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// DigestHex is Digest in lower-case hex, as verifications carry it.
func (b Binding) DigestHex() string {
	d := b.Digest()
	return hex.EncodeToString(d[:])
}

// Challenge is what the key signs: SHA-256(domain ‖ nonce ‖ digest). A
// fresh random nonce per proof makes every challenge new; the digest ties
// it to the binding.
func Challenge(nonce []byte, b Binding) []byte {
	d := b.Digest()
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(nonce)
	h.Write(d[:])
	return h.Sum(nil)
}

// Summary is the binding in plain words for the person about to prove it:
// "approval.approve apr_…: action=factor.revoke, target=…".
func (b Binding) Summary() string {
	var sb strings.Builder
	sb.WriteString(b.Action)
	if b.Subject != "" {
		sb.WriteString(" " + b.Subject)
	}
	keys := make([]string, 0, len(b.Details))
	for k := range b.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 0 {
			sb.WriteString(": ")
		} else {
			sb.WriteString(", ")
		}
		sb.WriteString(k + "=" + b.Details[k])
	}
	return sb.String()
}
