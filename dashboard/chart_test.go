package dashboard

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ max, top, step float64 }{
		{0, 4, 1}, {1, 1, 1}, {3, 3, 1}, {7, 8, 2}, {10, 10, 2.5}, {97, 100, 25}, {1234, 1500, 500},
		{19999.5, 20000, 5000}, {4e6, 4e6, 1e6},
	} {
		top, step := niceScale(c.max)
		if top != c.top || step != c.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.max, top, step, c.top, c.step)
		}
		if top < c.max {
			t.Errorf("niceScale(%v): top %v under the highest value", c.max, top)
		}
	}
	for v, want := range map[float64]string{0: "0", 950: "950", 1000: "1k", 1260: "1.3k", 12000: "12k", 3.4e6: "3.4M"} {
		if got := compact(v); got != want {
			t.Errorf("compact(%v) = %q, want %q", v, got, want)
		}
	}
}

func renderChart(t *testing.T, tmpl string, c chart) string {
	t.Helper()
	p, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.set["overview"].ExecuteTemplate(&b, tmpl, c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A chart reads without opening the numbers: both axes say what they count, the value axis has
// numbers from zero to above the highest bar, and the running period is drawn apart and says so.
func TestChartAxesAndPartialPeriod(t *testing.T) {
	pts := []point{
		{Label: "Oct", Value: 12000, Display: "$12,000.00"},
		{Label: "Nov", Value: 15500, Display: "$15,500.00"},
		{Label: "Dec", Value: 800, Display: "$800.00", Partial: true},
	}
	svg := renderChart(t, "barchart", barChart("Revenue per month", "Revenue", "Month (UTC)", pts, compactMoney))
	for _, want := range []string{
		`class="axis-title ytitle" text-anchor="middle">Revenue</text>`,
		`class="axis-title xtitle" text-anchor="middle">Month (UTC)</text>`,
		`class="tick ytick" text-anchor="end">$0</text>`,
		`class="tick ytick" text-anchor="end">$20k</text>`, // the top gridline is above 15,500
		`class="bar partial"><title>Dec (so far): $800.00</title>`,
		`class="tick sofar" text-anchor="middle">so far</text>`,
		`The lighter bar is Dec so far: it is still running.`,
		`<th scope="row">Dec (so far)</th><td>$800.00</td>`,
		`>Oct</text>`, `>Nov</text>`, `>Dec</text>`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %s", want)
		}
	}
	if n := strings.Count(svg, `class="bar partial"`); n != 1 {
		t.Errorf("%d partial bars, want the running month only", n)
	}
	// Without a running period there is no note and no lighter bar.
	done := renderChart(t, "barchart", barChart("Revenue per month", "Revenue", "Month (UTC)", pts[:2], compactMoney))
	if strings.Contains(done, "partial") || strings.Contains(done, "so far") {
		t.Error("finished periods drawn as running")
	}
}

// The activity chart has a bar per direction and hour on one axis, a legend, and labels that
// never crowd: 48 hours carry at most nine labels.
func TestActivityChart(t *testing.T) {
	var in, out []point
	for i := range 48 {
		in = append(in, point{Label: "h" + itoa(int64(i)), Value: float64(i), Display: itoa(int64(i)) + " in", Partial: i == 47})
		out = append(out, point{Label: "h" + itoa(int64(i)), Value: float64(2 * i), Display: itoa(int64(2*i)) + " out", Partial: i == 47})
	}
	c := groupedChart("Sync activity", "Changes", "Hour (UTC)", 2*chartW,
		[]series{{Name: "In from Keap", Class: "bar", Points: in}, {Name: "Out to Keap", Class: "bar-out", Points: out}}, compact)
	svg := renderChart(t, "barchart", c)
	if n := strings.Count(svg, "<rect "); n != 96 {
		t.Errorf("%d bars, want 96", n)
	}
	labels := regexp.MustCompile(`class="tick xtick"[^>]*>([^<]*)<`).FindAllStringSubmatch(svg, -1)
	if len(labels) > 9 || labels[len(labels)-1][1] != "h47" {
		t.Errorf("hour labels %v: want at most 9, the last hour last", labels)
	}
	for _, want := range []string{`swatch-bar-out`, `Out to Keap`, `<th scope="col">In from Keap</th>`,
		`<th scope="row">h47 (so far)</th><td>47 in</td><td>94 out</td>`, `class="tick ytick" text-anchor="end">100</text>`,
		`class="tick sofar" text-anchor="end">so far</text>`} { // kept inside at the right edge
		if !strings.Contains(svg, want) {
			t.Errorf("activity chart lacks %s", want)
		}
	}
	if n := strings.Count(svg, `>so far</text>`); n != 1 {
		t.Errorf("%d 'so far' marks, want one for the running hour", n)
	}
}
