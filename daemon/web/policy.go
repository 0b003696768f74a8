package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/policy"
)

// The policy editor: the current version and its history; a document to
// edit (the current one to start from, an upload, or a paste) that the
// page checks as it is typed (POST /admin/policy/check: every problem
// with its line, and the requirements it changes); the dry run, with the
// document's line diff against the current version, who changes status,
// and warnings (no administrator left who can sign in); and Apply, with
// the person's key, from the dry run only.

type policyPage struct {
	Current  core.PolicyVersion
	Versions []core.PolicyVersion
	Document string
	Comment  string
	DryRun   *api.PolicyDryRun
	Diff     []diffLine
	Error    string
}

func (h *handler) policy(rq *request) error {
	d, err := h.loadPolicy(rq)
	if err != nil {
		return err
	}
	d.Document = d.Current.Document
	if d.Document == "" {
		d.Document = "version: 1\ndescription: \nrules: []\n"
	}
	h.render(rq, http.StatusOK, "policy", "Policy", d)
	return nil
}

func (h *handler) loadPolicy(rq *request) (policyPage, error) {
	var d policyPage
	var err error
	if d.Current, err = h.svc.CurrentPolicy(rq.ctx, rq.p); err != nil {
		return d, err
	}
	vs, _, err := h.svc.ListPolicyVersions(rq.ctx, rq.p, core.PageReq{Limit: core.MaxPageSize})
	for i := len(vs) - 1; i >= 0; i-- {
		d.Versions = append(d.Versions, vs[i])
	}
	return d, err
}

// policyDocument reads the document from the upload, or the text area;
// line breaks as LF (a form sends CRLF; proofs are made over LF).
func policyDocument(rq *request) string {
	doc := rq.r.PostFormValue("document")
	if f, _, err := rq.r.FormFile("file"); err == nil {
		defer f.Close()
		var b strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := f.Read(buf)
			b.Write(buf[:n])
			if err != nil || b.Len() > maxForm {
				break
			}
		}
		if b.Len() > 0 {
			doc = b.String()
		}
	}
	return strings.ReplaceAll(doc, "\r\n", "\n")
}

// dryRun shows what applying a document would do, changing nothing: the
// line diff, the changes, whom they affect, and what would go wrong.
func (h *handler) dryRun(rq *request) error {
	d, err := h.loadPolicy(rq)
	if err != nil {
		return err
	}
	d.Document, d.Comment = policyDocument(rq), rq.r.PostFormValue("comment")
	run, err := h.svc.DryRunPolicy(rq.ctx, rq.p, api.PolicyDocument{Document: d.Document, Comment: d.Comment})
	status := http.StatusOK
	if err != nil {
		status, d.Error = h.describe(rq, err)
	} else {
		d.DryRun, d.Diff = &run, lineDiff(d.Current.Document, d.Document)
	}
	h.render(rq, status, "policy", "Policy", d)
	return nil
}

func (h *handler) applyPolicy(rq *request) error {
	doc := strings.ReplaceAll(rq.r.PostFormValue("document"), "\r\n", "\n")
	out, err := h.svc.ApplyPolicy(rq.ctx, rq.p, api.PolicyDocument{Document: doc, Comment: rq.r.PostFormValue("comment")})
	if err != nil {
		return err
	}
	if out.Approval != nil {
		return rq.redirect("/admin/policy", "The change weakens the policy, so it waits for a second person (request "+out.Approval.ID+" on the approvals page).")
	}
	return rq.redirect("/admin/policy", "Policy version "+strconv.Itoa(out.Version.Version)+" applied; "+
		strconv.Itoa(out.Reevaluation.Users)+" users re-evaluated.")
}

// policyCheck is the live check of the editor: the document's problems
// with their lines, or the requirements it changes against the current
// version. It changes nothing and reads no user.
type policyCheck struct {
	OK       bool            `json:"ok"`
	Problems []checkProblem  `json:"problems"`
	Changes  []policy.Change `json:"changes"`
	Weakens  bool            `json:"weakens"`
}

type checkProblem struct {
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (h *handler) checkPolicy(rq *request) error {
	var in struct {
		Document string `json:"document"`
	}
	if err := readJSON(rq, &in); err != nil {
		return err
	}
	out := policyCheck{Problems: []checkProblem{}, Changes: []policy.Change{}}
	doc, err := policy.Parse("policy.yaml", []byte(in.Document))
	var pe *policy.ParseError
	switch {
	case errors.As(err, &pe):
		for _, p := range pe.Problems {
			out.Problems = append(out.Problems, checkProblem{Line: p.Line, Field: p.Field, Message: p.Msg})
		}
	case err != nil:
		out.Problems = append(out.Problems, checkProblem{Message: err.Error()})
	default:
		cur, err := h.svc.CurrentPolicy(rq.ctx, rq.p)
		if err != nil {
			return err
		}
		var old *policy.Document
		if cur.Document != "" {
			old, _ = policy.Parse("current.yaml", []byte(cur.Document))
		}
		out.OK, out.Changes, out.Weakens = true, policy.Diff(old, doc), policy.Weakens(old, doc)
		if out.Changes == nil {
			out.Changes = []policy.Change{}
		}
	}
	writeJSON(rq.w, http.StatusOK, out)
	return nil
}

// diffLine is one line of a document diff: kept (" "), removed ("-") or
// added ("+").
type diffLine struct {
	Op   string
	Text string
}

// maxDiffLines bounds the diff: past it the page shows the documents.
const maxDiffLines = 2000

// lineDiff compares two documents line by line (longest common
// subsequence), for the dry run to show what the edit changes.
func lineDiff(a, b string) []diffLine {
	x, y := splitLines(a), splitLines(b)
	if len(x) > maxDiffLines || len(y) > maxDiffLines {
		return nil
	}
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, diffLine{" ", x[i]})
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, diffLine{"+", y[j]})
			j++
		default:
			out = append(out, diffLine{"-", x[i]})
			i++
		}
	}
	return out
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
