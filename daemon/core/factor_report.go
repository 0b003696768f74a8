package core

import (
	"context"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/policy"
)

// Factor reports.
const (
	ReportStale      = "stale"
	ReportVulnerable = "vulnerable"
)

// FactorReport lists the active factors the policy finds stale (unused
// longer than allowed) or on vulnerable hardware (a known advisory), for
// everyone or one group, in user order. Advisories are matched against the
// stored evidence at every run, so a newly published one finds keys
// enrolled before it.
func (s *Service) FactorReport(ctx context.Context, p Principal, which, group string) ([]api.ReportFactor, error) {
	if err := p.authorize(ReadReports, ""); err != nil {
		return nil, err
	}
	if which != ReportStale && which != ReportVulnerable {
		return nil, invalid("which", "%q is not a factor report; use stale or vulnerable", which)
	}
	now := s.now()
	out := []api.ReportFactor{}
	var doc *policy.Document
	err := s.runBulk(ctx, bulkPass{
		read: s.readStore(nil, func(tx ReadTx) (err error) {
			_, doc, err = s.currentPolicy(tx)
			return err
		}),
		eval: func(_ int, sub *bulkSubject) {
			if sub.skip = group != "" && !slices.Contains(sub.user.Groups, group); !sub.skip {
				sub.d = policy.Evaluate(doc, sub.user, sub.factors, sub.facts.FirstApplied, sub.facts.Exemptions, now)
			}
		},
		collect: func(subs []bulkSubject) error {
			for i := range subs {
				if !subs[i].skip {
					out = append(out, reportFactors(subs[i], which)...)
				}
			}
			return nil
		},
	})
	return out, err
}

func reportFactors(sub bulkSubject, which string) []api.ReportFactor {
	ids := sub.d.Stale
	if which == ReportVulnerable {
		ids = sub.d.Vulnerable
	}
	var out []api.ReportFactor
	for _, id := range ids {
		r := api.ReportFactor{UserID: sub.facts.User.ID, Username: sub.facts.User.Username, FactorID: id, Why: whyFactor(sub.d, id)}
		for _, f := range sub.facts.Factors {
			if f.ID != id {
				continue
			}
			r.Kind, r.LastUsedAt = f.Kind, f.LastUsedAt
			if ev := f.Evidence; ev != nil {
				r.Model, r.Serial, r.Firmware = ev.Model, ev.Serial, ev.Firmware
			}
		}
		out = append(out, r)
	}
	return out
}

// whyFactor joins the decision's reasons about one factor.
func whyFactor(d policy.Decision, id string) string {
	var why []string
	for _, r := range d.Reasons {
		if r.FactorID == id {
			why = append(why, r.Message)
		}
	}
	return strings.Join(why, "; ")
}
