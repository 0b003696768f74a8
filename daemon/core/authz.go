package core

import (
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// Action names a permission. Every API route maps to exactly one.
type Action string

// Permissions.
const (
	ReadSelf           Action = "self.read"
	ReadUsers          Action = "users.read"
	CreateUsers        Action = "users.create"
	UpdateUsers        Action = "users.update"
	EnableUsers        Action = "users.enable"
	RequestUserMFA     Action = "users.request_reset_mfa"
	RequestDisable     Action = "users.request_disable"
	RequestDelete      Action = "users.request_delete"
	ReadFactors        Action = "factors.read"
	UpdateFactors      Action = "factors.update"
	SuspendFactors     Action = "factors.suspend"
	ResumeFactors      Action = "factors.resume"
	RequestRevoke      Action = "factors.request_revoke"
	RequestFactorDel   Action = "factors.request_delete"
	ReadDevices        Action = "devices.read"
	ReportLost         Action = "devices.lost"
	ReadEnrolments     Action = "enrolments.read"
	CreateEnrolments   Action = "enrolments.create"
	CompleteEnrol      Action = "enrolments.complete"
	CancelEnrolments   Action = "enrolments.cancel"
	ReadTokens         Action = "tokens.read"
	CreateTokens       Action = "tokens.create"
	RevokeTokens       Action = "tokens.revoke"
	ReadApprovals      Action = "approvals.read"
	DecideApprovals    Action = "approvals.decide"
	CancelApprovals    Action = "approvals.cancel"
	VerifyUsers        Action = "verify.use"
	ReadMFAStatus      Action = "users.mfa_status"
	UnlockUsers        Action = "users.unlock"
	ManageRecovery     Action = "recovery.manage"
	ReadRecovery       Action = "recovery.read"
	ClearRecovery      Action = "recovery.clear_lock"
	ReadBreakGlass     Action = "breakglass.read"
	RotateBreakGlass   Action = "breakglass.rotate"
	RegenRecoveryCodes Action = "recovery_codes.regenerate"
	ReplayEvents       Action = "events.replay"
	ActivateFactors    Action = "factors.activate"
	VerifyAttestation  Action = "attest.verify"
	ReadAudit          Action = "audit.read"
	VerifyAudit        Action = "audit.verify"
	ReadPolicy         Action = "policy.read"
	ApplyPolicy        Action = "policy.apply"
	ReadReports        Action = "reports.read"
	RequestExempt      Action = "users.request_exempt"
	// RemoveOwnFactors lets a person remove their own factor: at once
	// while the policy is still met without it, through approval when it
	// would leave them short (Service.RemoveOwnFactor).
	RemoveOwnFactors Action = "factors.remove_own"
)

// Permissions of login surfaces (the login_host role).
const (
	// RecordLogins lets a login surface put a decision it made before any
	// verification (login.refused, login.allowed) in the audit trail.
	RecordLogins Action = "logins.record"
	// IssueFirstLoginPasses lets a login surface hand a user who must
	// enrol, and whose first factor it checked, a first-login pass.
	IssueFirstLoginPasses Action = "passes.first_login"
)

// Scope says how far a role's permission reaches.
type Scope int

// Scopes. The zero Scope grants nothing.
const (
	None Scope = iota
	// Own: only records of the principal's own user (their factors,
	// enrolments, tokens, requests).
	Own
	// All: every record.
	All
)

// grants is the one permission table: role → action → scope. Anything not
// listed is denied. docs/security.md renders it for people.
var grants = map[string]map[Action]Scope{
	api.RoleAdmin: allOf(All, ReadSelf, RegenRecoveryCodes, ReplayEvents, ActivateFactors, VerifyAttestation,
		ReadUsers, CreateUsers, UpdateUsers, EnableUsers, RequestUserMFA,
		RequestDisable, RequestDelete, ReadFactors, UpdateFactors, SuspendFactors, ResumeFactors,
		RequestRevoke, RequestFactorDel, ReadDevices, ReportLost, ReadEnrolments, CreateEnrolments,
		CompleteEnrol, CancelEnrolments, ReadTokens, CreateTokens, RevokeTokens, ReadApprovals,
		DecideApprovals, CancelApprovals, ReadAudit, VerifyAudit, VerifyUsers, ReadMFAStatus, UnlockUsers,
		ReadPolicy, ApplyPolicy, ReadReports, RequestExempt, ManageRecovery, ReadRecovery, ClearRecovery,
		ReadBreakGlass, RotateBreakGlass),
	api.RoleSecurityOfficer: merge(allOf(All, ReadSelf, ReadUsers, RequestUserMFA, RequestDisable, ReadFactors, ReadMFAStatus, UnlockUsers,
		SuspendFactors, ResumeFactors, RequestRevoke, ReadDevices, ReportLost, ReadEnrolments,
		ReadApprovals, DecideApprovals, ReadAudit, VerifyAudit, ReadPolicy, ApplyPolicy, ReadReports, RequestExempt,
		ManageRecovery, ReadRecovery, ClearRecovery, ReadBreakGlass, ReplayEvents),
		allOf(Own, ReadTokens, CreateTokens, RevokeTokens, CancelApprovals)),
	api.RoleHelpdesk: merge(allOf(All, ReadSelf, ReadUsers, RequestUserMFA, ReadFactors, SuspendFactors, ReadMFAStatus, UnlockUsers,
		ResumeFactors, RequestRevoke, ReadDevices, ReportLost, ReadEnrolments, CreateEnrolments,
		CancelEnrolments, ReadApprovals, ReadPolicy, ReadReports, RequestExempt, ManageRecovery, ReadRecovery),
		allOf(Own, ReadTokens, CreateTokens, RevokeTokens, CancelApprovals)),
	api.RoleEnroller: merge(allOf(All, ReadSelf, ReadUsers, ReadFactors, ReadDevices, ReadEnrolments, VerifyAttestation,
		CreateEnrolments, CompleteEnrol, CancelEnrolments),
		allOf(Own, ReadTokens, CreateTokens, RevokeTokens)),
	api.RoleAuditor: merge(allOf(All, ReadSelf, ReadUsers, ReadFactors, ReadDevices, ReadEnrolments, ReadMFAStatus,
		ReadApprovals, ReadAudit, VerifyAudit, ReadPolicy, ReadReports, ReadRecovery, ReadBreakGlass),
		allOf(Own, ReadTokens, CreateTokens, RevokeTokens)),
	api.RoleService: merge(allOf(All, ReadSelf, VerifyUsers, ReadMFAStatus), allOf(Own, ReadTokens)),
	// A login host (a PAM host, the RADIUS listener) is a service that
	// also speaks for the login: what it records and the first-login
	// passes it issues are why a plain application may not.
	api.RoleLoginHost: merge(allOf(All, ReadSelf, VerifyUsers, ReadMFAStatus, RecordLogins, IssueFirstLoginPasses),
		allOf(Own, ReadTokens)),
	api.RoleUser: merge(allOf(All, ReadSelf),
		allOf(Own, ReadMFAStatus, ReadFactors, UpdateFactors, SuspendFactors, ReadDevices, ReadEnrolments, CompleteEnrol,
			CreateEnrolments, CancelEnrolments, ActivateFactors,
			ReadTokens, CreateTokens, RevokeTokens, RegenRecoveryCodes, RemoveOwnFactors)),
	// rolePass is what a redeemed temporary access pass carries: enrol a
	// factor for its own user, nothing else. Not assignable.
	rolePass: merge(allOf(All, ReadSelf), allOf(Own, CreateEnrolments, CompleteEnrol, ReadEnrolments, ReadFactors, RegenRecoveryCodes)),
	// roleEnrolment is what a redeemed enrolment code carries: complete
	// the one enrolment the code named (Principal.EnrolmentID), for its
	// own user, nothing else. Not assignable.
	roleEnrolment: merge(allOf(All, ReadSelf), allOf(Own, CompleteEnrol)),
}

// Pseudo-roles that credentials carry but no user can be given.
const (
	rolePass       = "pass"
	roleEnrolment  = "enrolment"
	roleBreakGlass = "breakglass"
)

func init() {
	// A break-glass session can do what an admin can, without a second
	// approver (see request in approvals.go), and nothing else.
	grants[roleBreakGlass] = grants[api.RoleAdmin]
}

func allOf(s Scope, actions ...Action) map[Action]Scope {
	m := make(map[Action]Scope, len(actions))
	for _, a := range actions {
		m[a] = s
	}
	return m
}

func merge(ms ...map[Action]Scope) map[Action]Scope {
	out := map[Action]Scope{}
	for _, m := range ms {
		for a, s := range m {
			out[a] = max(out[a], s)
		}
	}
	return out
}

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return slices.Contains(api.AllRoles, r) }

// ServiceAccountRole reports whether r is a role only service accounts
// hold: service, scim or login_host.
func ServiceAccountRole(r string) bool {
	return r == api.RoleService || r == api.RoleScim || r == api.RoleLoginHost
}

// Principal is who is acting: a user authenticated by a token (or, later,
// mTLS or WebAuthn), with the roles the credential carries.
type Principal struct {
	UserID   string
	Username string
	Roles    []string
	Auth     string // token, mtls, webauthn, pass, enrolment_code, breakglass, system
	TokenID  string
	// PassID is set when the principal is a redeemed temporary access
	// pass: it may only enrol a factor for its user.
	PassID string
	// EnrolmentID is set when the principal is a redeemed enrolment code:
	// it may only complete that enrolment.
	EnrolmentID string
	// Proof is the fresh proof of possession that came with this request
	// (the Keyfleet-Proof header, or a page's form); actions in
	// proof.Catalogue check it (proofs.go).
	Proof *api.Proof
	// sessionEnds is when a break-glass session ends (its token's expiry).
	sessionEnds *time.Time
}

// breakGlass reports whether p is a break-glass session.
func (p Principal) breakGlass() bool { return p.Auth == "breakglass" }

// System is the daemon acting on its own (expiry sweeps, bootstrap).
var System = Principal{UserID: "system", Username: "keyfleetd", Roles: []string{api.RoleAdmin}, Auth: "system"}

// Actor is the principal as audit records name it.
func (p Principal) Actor() api.Actor {
	return api.Actor{ID: p.UserID, Name: p.Username, Auth: p.Auth, TokenID: p.TokenID}
}

// Scope is the widest scope any of p's roles grants for a.
func (p Principal) Scope(a Action) Scope {
	s := None
	for _, r := range p.Roles {
		s = max(s, grants[r][a])
	}
	return s
}

// Can reports whether p may do a to a record owned by ownerID ("" for
// records nobody owns).
func (p Principal) Can(a Action, ownerID string) bool {
	switch p.Scope(a) {
	case All:
		return true
	case Own:
		return ownerID != "" && ownerID == p.UserID
	}
	return false
}

// Allowed reports whether p may do a at all, to some record. The HTTP
// layer checks it before a handler runs; the handler's Service call then
// checks the record itself.
func (p Principal) Allowed(a Action) bool { return p.Scope(a) != None }

func (p Principal) authorize(a Action, ownerID string) error {
	if p.Can(a, ownerID) {
		return nil
	}
	if p.Scope(a) == Own {
		return &ForbiddenError{Principal: p.Username, Action: a, Reason: "your role allows this only for your own records"}
	}
	return &ForbiddenError{Principal: p.Username, Action: a}
}

// ownFilter returns the user id a list must be narrowed to: "" when p may
// see every record, p's own id when only their own.
func (p Principal) ownFilter(a Action) (string, error) {
	switch p.Scope(a) {
	case All:
		return "", nil
	case Own:
		return p.UserID, nil
	}
	return "", &ForbiddenError{Principal: p.Username, Action: a}
}

// approvers lists the roles that may decide a sensitive action.
var approvers = map[string][]string{
	api.ActionFactorRevoke: {api.RoleAdmin, api.RoleSecurityOfficer},
	api.ActionFactorDelete: {api.RoleAdmin},
	api.ActionUserResetMFA: {api.RoleAdmin, api.RoleSecurityOfficer},
	api.ActionUserDisable:  {api.RoleAdmin, api.RoleSecurityOfficer},
	api.ActionUserDelete:   {api.RoleAdmin},
	api.ActionPolicyApply:  {api.RoleAdmin, api.RoleSecurityOfficer},
	api.ActionUserExempt:   {api.RoleAdmin, api.RoleSecurityOfficer},
	// A helpdesk identity check is approved by someone other than the
	// helpdesk user who recorded it.
	api.ActionRecoveryIdentity: {api.RoleAdmin, api.RoleSecurityOfficer},
	// A role beyond "user", or a change that weakens the policy's hold on
	// someone (grants.go); granting admin needs an admin (grantApprovers).
	api.ActionUserAccess: {api.RoleAdmin, api.RoleSecurityOfficer},
	// The pass of a recovery case for an account with a role beyond
	// "user" (passes.go).
	api.ActionRecoveryPass: {api.RoleAdmin, api.RoleSecurityOfficer},
	// A new break-glass credential (breakglass.go).
	api.ActionBreakGlassRotate: {api.RoleAdmin},
}

func contains(s []string, v string) bool { return slices.Contains(s, v) }
