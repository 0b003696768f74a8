package web

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The overview's charts are SVG drawn on the server: no script, and they
// read the same without colour (every bar and point is labelled).

// point is one labelled value between 0 and 1.
type point struct {
	Label string
	Value float64
}

// barChart lays out horizontal bars, one per point.
type barChart struct {
	Height int
	Bars   []bar
}

type bar struct {
	Label string
	Y     int
	Width float64 // pixels of the 380-pixel track
	Text  string
}

func newBarChart(ps []point) barChart {
	c := barChart{Height: max(len(ps)*28, 28)}
	for i, p := range ps {
		c.Bars = append(c.Bars, bar{Label: p.Label, Y: i * 28, Width: p.Value * 380, Text: fmt.Sprintf("%.0f%%", p.Value*100)})
	}
	return c
}

// lineChart is adoption over time: a polyline over weekly points.
type lineChart struct {
	Points string // SVG polyline points in a 0..600 × 0..200 box
	Dots   []dot
	First  string
	Last   string
}

type dot struct {
	X, Y  float64
	Title string
}

func newLineChart(ps []point) lineChart {
	var c lineChart
	if len(ps) == 0 {
		return c
	}
	var b strings.Builder
	step := 560.0 / float64(max(len(ps)-1, 1))
	for i, p := range ps {
		x, y := 20+float64(i)*step, 190-p.Value*180
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		c.Dots = append(c.Dots, dot{X: x, Y: y, Title: fmt.Sprintf("%s: %.0f%%", p.Label, p.Value*100)})
	}
	c.Points, c.First, c.Last = strings.TrimSpace(b.String()), ps[0].Label, ps[len(ps)-1].Label
	return c
}

// adoptionOverTime is, for each of the last weeks, the share of the users
// who existed then that had an active factor then. It is computed from
// creation, activation and revocation times, as far back as the records
// go (suspensions in the past are not recorded, so they count as active).
func adoptionOverTime(users []core.User, factors []core.Factor, now time.Time, weeks int) []point {
	byUser := map[string][]core.Factor{}
	for _, f := range factors {
		byUser[f.UserID] = append(byUser[f.UserID], f)
	}
	out := make([]point, 0, weeks)
	for w := weeks - 1; w >= 0; w-- {
		at := now.Add(-time.Duration(w) * 7 * 24 * time.Hour)
		total, with := 0, 0
		for _, u := range users {
			if u.Kind == api.KindService || u.CreatedAt.After(at) {
				continue
			}
			total++
			if slices.ContainsFunc(byUser[u.ID], func(f core.Factor) bool { return f.UserID == u.ID && activeAt(f, at) }) {
				with++
			}
		}
		v := 0.0
		if total > 0 {
			v = float64(with) / float64(total)
		}
		out = append(out, point{Label: at.Format("02 Jan"), Value: v})
	}
	return out
}

func activeAt(f core.Factor, at time.Time) bool {
	return f.ActivatedAt != nil && !f.ActivatedAt.After(at) && (f.RevokedAt == nil || f.RevokedAt.After(at))
}

// byGroup turns the report's per-group counts into sorted bars.
func byGroup(m map[string]api.ComplianceCounts) []point {
	out := make([]point, 0, len(m))
	for g, c := range m {
		out = append(out, point{Label: g, Value: c.Adoption})
	}
	slices.SortFunc(out, func(a, b point) int { return strings.Compare(a.Label, b.Label) })
	return out
}

// stackChart is per-day counts stacked by series, as vertical bars in a
// 600 × 200 box, with a legend and its numbers as a table.
type stackChart struct {
	Title  string
	Days   []string
	Series []series
	Bars   []stackBar
	Max    int
	Total  int
}

type series struct {
	Name   string
	Class  string // s0, s1, … (colours in app.css)
	Counts []int
}

type stackBar struct {
	X, W  float64
	Label string
	Parts []stackPart
	Text  string // "03 Dec: 5 success, 1 failed"
}

type stackPart struct {
	Y, H  float64
	Class string
}

// newStackChart lays out counts[series][day]; order fixes the series that
// come first (others follow by name).
func newStackChart(title string, days []string, counts map[string][]int, order []string) stackChart {
	c := stackChart{Title: title, Days: days}
	var names []string
	for n := range counts {
		if !slices.Contains(order, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range append(slices.Clone(order), names...) {
		if counts[n] != nil {
			c.Series = append(c.Series, series{Name: n, Class: fmt.Sprintf("s%d", len(c.Series)%6), Counts: counts[n]})
		}
	}
	totals := make([]int, len(days))
	for _, s := range c.Series {
		for i, v := range s.Counts {
			totals[i] += v
		}
	}
	for _, t := range totals {
		c.Max, c.Total = max(c.Max, t), c.Total+t
	}
	step := 560.0 / float64(max(len(days), 1))
	for i, day := range days {
		b := stackBar{X: 30 + float64(i)*step + step*0.15, W: step * 0.7, Label: day}
		y := 180.0
		var words []string
		for _, s := range c.Series {
			if s.Counts[i] == 0 {
				continue
			}
			h := float64(s.Counts[i]) / float64(max(c.Max, 1)) * 160
			y -= h
			b.Parts = append(b.Parts, stackPart{Y: y, H: h, Class: s.Class})
			words = append(words, fmt.Sprintf("%d %s", s.Counts[i], s.Name))
		}
		if len(words) == 0 {
			words = []string{"none"}
		}
		b.Text = day + ": " + strings.Join(words, ", ")
		c.Bars = append(c.Bars, b)
	}
	return c
}
