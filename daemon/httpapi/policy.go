package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/policy"
)

// registerPolicy adds the policy engine's routes: versioned documents,
// dry runs, rollbacks, exemptions and the compliance report.
func (h *Handler) registerPolicy() {
	h.route("GET /v1/policy", core.ReadPolicy, h.currentPolicy)
	h.route("POST /v1/policy", core.ApplyPolicy, h.applyPolicy)
	h.route("POST /v1/policy/dry-run", core.ApplyPolicy, h.dryRunPolicy)
	h.route("POST /v1/policy/rollback", core.ApplyPolicy, h.rollbackPolicy)
	h.route("GET /v1/policy/versions", core.ReadPolicy, h.listPolicyVersions)
	h.route("GET /v1/policy/versions/{n}", core.ReadPolicy, h.getPolicyVersion)
	h.route("GET /v1/policy/diff", core.ReadPolicy, h.diffPolicy)
	h.route("POST /v1/users/{user}/exemptions", core.RequestExempt, h.requestExemption)
	h.route("GET /v1/reports/compliance", core.ReadReports, h.complianceReport)
	h.route("GET /v1/reports/factors", core.ReadReports, h.factorReport)
}

// policyBody reads a policy document: the YAML itself (Content-Type
// application/yaml, text/yaml or application/x-yaml; the comment in
// ?comment=), or JSON {"document": …, "comment": …}.
func policyBody(r *http.Request) (api.PolicyDocument, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/yaml", "text/yaml", "application/x-yaml":
		b, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return api.PolicyDocument{}, &apiError{http.StatusRequestEntityTooLarge, probBodyTooLarge, "Body too large",
				fmt.Sprintf("the document is larger than %d bytes; send less", mbe.Limit)}
		}
		if err != nil {
			return api.PolicyDocument{}, err
		}
		return api.PolicyDocument{Document: string(b), Comment: r.URL.Query().Get("comment")}, nil
	}
	var in api.PolicyDocument
	err := decode(r, &in, false)
	return in, err
}

func (h *Handler) currentPolicy(r *http.Request, p core.Principal) (int, any, error) {
	v, err := h.svc.CurrentPolicy(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	out := api.CurrentPolicy{Version: v.Version}
	if v.Version > 0 {
		cur := v.API(true)
		out.Current = &cur
	}
	return http.StatusOK, out, nil
}

// policyOutcome answers 201 with the new version, or 202 when it waits
// for a second approver.
func policyOutcome(out core.PolicyOutcome, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	if out.Approval != nil {
		return accepted(*out.Approval)
	}
	return http.StatusCreated, api.PolicyApplied{Version: out.Version.API(false), Reevaluation: out.Reevaluation}, nil
}

func (h *Handler) applyPolicy(r *http.Request, p core.Principal) (int, any, error) {
	in, err := policyBody(r)
	if err != nil {
		return 0, nil, err
	}
	return policyOutcome(h.svc.ApplyPolicy(r.Context(), p, in))
}

func (h *Handler) dryRunPolicy(r *http.Request, p core.Principal) (int, any, error) {
	in, err := policyBody(r)
	if err != nil {
		return 0, nil, err
	}
	out, err := h.svc.DryRunPolicy(r.Context(), p, in)
	return http.StatusOK, out, err
}

func (h *Handler) rollbackPolicy(r *http.Request, p core.Principal) (int, any, error) {
	var in api.PolicyRollback
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	return policyOutcome(h.svc.RollbackPolicy(r.Context(), p, in))
}

func (h *Handler) listPolicyVersions(r *http.Request, p core.Principal) (int, any, error) {
	pg, err := pageReq(r)
	if err != nil {
		return 0, nil, err
	}
	vs, next, err := h.svc.ListPolicyVersions(r.Context(), p, pg)
	return http.StatusOK, page(vs, next, func(v core.PolicyVersion) api.PolicyVersion { return v.API(false) }), err
}

func (h *Handler) getPolicyVersion(r *http.Request, p core.Principal) (int, any, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return 0, nil, &apiError{http.StatusBadRequest, probBadRequest, "Bad version",
			fmt.Sprintf("%q is not a policy version; versions are numbers from 1 ('keyfleet policy history' lists them)", r.PathValue("n"))}
	}
	v, err := h.svc.GetPolicyVersion(r.Context(), p, n)
	return http.StatusOK, v.API(true), err
}

// versionParam reads an optional version number from the query.
func versionParam(r *http.Request, name string, def int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, &apiError{http.StatusBadRequest, probBadRequest, "Bad query parameter",
			fmt.Sprintf("%s=%q must be a policy version number (0 is the empty document)", name, s)}
	}
	return n, nil
}

func (h *Handler) diffPolicy(r *http.Request, p core.Principal) (int, any, error) {
	from, err := versionParam(r, "from", -1)
	if err != nil {
		return 0, nil, err
	}
	to, err := versionParam(r, "to", 0)
	if err != nil {
		return 0, nil, err
	}
	d, err := h.svc.DiffPolicy(r.Context(), p, from, to)
	return http.StatusOK, d, err
}

func (h *Handler) requestExemption(r *http.Request, p core.Principal) (int, any, error) {
	var in api.CreateExemption
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	a, err := h.svc.RequestExemption(r.Context(), p, r.PathValue("user"), in)
	if err != nil {
		return 0, nil, err
	}
	return accepted(a)
}

func (h *Handler) complianceReport(r *http.Request, p core.Principal) (int, any, error) {
	near := 14 * 24 * time.Hour
	if s := r.URL.Query().Get("near_days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 366 {
			return 0, nil, &apiError{http.StatusBadRequest, probBadRequest, "Bad query parameter",
				fmt.Sprintf("near_days=%q must be a number of days from 0 to 366", s)}
		}
		near = time.Duration(n) * 24 * time.Hour
	}
	rep, err := h.svc.ComplianceReport(r.Context(), p, r.URL.Query().Get("group"), near)
	return http.StatusOK, rep, err
}

func (h *Handler) factorReport(r *http.Request, p core.Principal) (int, any, error) {
	q := r.URL.Query()
	items, err := h.svc.FactorReport(r.Context(), p, q.Get("which"), q.Get("group"))
	return http.StatusOK, api.Page[api.ReportFactor]{Items: items}, err
}

// policyFields names what the policy found wrong: every problem of a
// document by field with its line, or every reason a key, kind or
// removal was refused by reason code.
func policyFields(err error) map[string]string {
	var (
		pe *policy.ParseError
		re *policy.RequirementError
		rm *policy.RemovalError
	)
	out := map[string]string{}
	switch {
	case errors.As(err, &pe):
		for _, pr := range pe.Problems {
			field := pr.Field
			if field == "" {
				field = "document"
			}
			msg := fmt.Sprintf("line %d: %s", pr.Line, pr.Msg)
			if prev, ok := out[field]; ok {
				msg = prev + "; " + msg
			}
			out[field] = msg
		}
	case errors.As(err, &re):
		for _, r := range re.Reasons {
			out[r.Code] = r.Message
		}
	case errors.As(err, &rm):
		out[policy.CodeLastFactor] = rm.Message
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
