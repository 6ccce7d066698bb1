package statuspage

import (
	"fmt"
	"strings"
	"time"
)

// The timeline's geometry, in SVG user units.
const (
	tlWidth   = 320
	tlLabel   = 72 // room for the prefix at the left
	tlRow     = 14
	tlBar     = 10
	tlPadTop  = 4
	tlBehind  = 7 * 24 * time.Hour // how far back the timeline starts
	tlAheadAt = 14 * 24 * time.Hour
)

// timeline is one key's versions laid out on a time axis from a week ago
// to twice expiry_warn_before ahead (at least two weeks): what the
// template draws as an inline SVG.
type timeline struct {
	Width, Height int
	Label         string // the SVG's accessible name
	NowX          float64
	WarnX, WarnW  float64 // the shaded expiry_warn_before window
	Bars          []bar
}

type bar struct {
	Y, TextY   int
	X, W       float64
	Class      string // the version's state, or "warning"
	Prefix     string
	Title      string // tooltip: state and dates
	OpenLeft   bool   // starts before the window
	OpenRight  bool   // ends after it
	ArrowRight float64
}

func newTimeline(vs []Version, now time.Time, warn time.Duration) timeline {
	start := now.Add(-tlBehind)
	end := now.Add(max(2*warn, tlAheadAt))
	span := float64(end.Sub(start))
	x := func(t time.Time) float64 {
		f := float64(t.Sub(start)) / span
		f = min(max(f, 0), 1)
		return tlLabel + f*float64(tlWidth-tlLabel)
	}
	tl := timeline{Width: tlWidth, Height: tlPadTop*2 + tlRow*max(1, len(vs)), NowX: x(now)}
	tl.WarnX = tl.NowX
	tl.WarnW = x(now.Add(warn)) - tl.NowX
	var parts []string
	for i, v := range vs {
		from, to := start, end
		if v.NotBefore != nil && v.NotBefore.After(start) {
			from = *v.NotBefore
		}
		if v.Expires != nil && v.Expires.Before(end) {
			to = *v.Expires
		}
		b := bar{
			Y: tlPadTop + i*tlRow, TextY: tlPadTop + i*tlRow + tlBar - 1, Prefix: v.Prefix, Class: string(v.State),
			X: x(from), W: max(x(to)-x(from), 1),
		}
		if v.Warning {
			b.Class = "warning"
		}
		b.Title = versionTitle(v)
		tl.Bars = append(tl.Bars, b)
		parts = append(parts, b.Title)
	}
	tl.Label = "Key versions on a time line from " + start.UTC().Format("2006-01-02") + " to " +
		end.UTC().Format("2006-01-02") + ": " + strings.Join(parts, "; ")
	return tl
}

func versionTitle(v Version) string {
	s := fmt.Sprintf("%s %s", v.Prefix, v.State)
	if v.Warning {
		s += " (expiring soon)"
	}
	if v.NotBefore != nil {
		s += ", from " + v.NotBefore.Format(time.RFC3339)
	}
	if v.Expires != nil {
		s += ", expires " + v.Expires.Format(time.RFC3339)
	}
	if v.RejectedUntil != nil {
		s += ", set aside until " + v.RejectedUntil.Format(time.RFC3339)
	}
	return s
}
