package dashboard

import (
	"math"
	"strconv"
)

// Charts are server-rendered SVG so the overview reads without JavaScript: a value axis with
// gridlines and numbers, labels under the bars, the period still running drawn lighter and
// labelled "so far" (a month that has just begun is not a crash), a <title> on every bar, and
// the numbers as a table for screen readers.

type point struct {
	Label   string
	Value   float64
	Display string
	Partial bool // the period is still running
}

// series is one set of bars of a chart; a chart with two draws them side by side per slot.
type series struct {
	Name   string
	Class  string // CSS class of its bars (and legend swatch)
	Points []point
}

type bar struct {
	X, Y, W, H float64
	Label      string
	Display    string
	Class      string
	ShowLabel  bool
	Partial    bool
	SoFar      bool // write "so far" above it (once per slot)
	SoFarX     float64
	SoFarAt    string  // text-anchor of "so far": kept inside the chart at the right edge
	LabelX     float64 // vertical: x of the label; horizontal: y of the text baseline
	ValueX     float64 // horizontal: where the value text starts
	Anchor     string  // text-anchor of the label: the first one starts at the edge, not past it
}

// tick is a gridline of the value axis and its number.
type tick struct {
	Y     float64
	Label string
}

type chart struct {
	Title   string
	Empty   string // what a chart with nothing to draw says (horizontal bar charts)
	Width   float64
	Height  float64
	Bars    []bar
	Points  []point // the first series
	Series  []series
	Rows    []tableRow // the numbers, one column per series
	Ticks   []tick
	YTitle  string // what the value axis counts
	XTitle  string // what a slot is
	Note    string // says how the running period is drawn, when there is one
	Max     string
	Left    float64 // x of the value axis
	TickX   float64 // where the axis numbers end
	MidX    float64 // centre of the plot (axis titles)
	MidY    float64
	Base    float64 // y of the category axis
	LabelY  float64 // y of the labels under the bars
	XTitleY float64
}

// tableRow is one line of the numbers under a chart.
type tableRow struct {
	Label  string
	Values []string
}

const (
	chartW, chartH = 600.0, 250.0
	chartTop       = 12.0  // room above the highest gridline's label
	chartLeft      = 58.0  // room for the value axis numbers
	chartBottom    = 44.0  // category labels and the axis title
	hbarLabelW     = 150.0 // horizontal bars: room for the labels
)

// barChart is a vertical bar chart of one series.
func barChart(title, yTitle, xTitle string, pts []point, format func(float64) string) chart {
	return groupedChart(title, yTitle, xTitle, chartW, []series{{Name: yTitle, Class: "bar", Points: pts}}, format)
}

// groupedChart draws one bar per series in every slot, all series on one value axis; every
// series has the same slots. Labels under every few slots so they never overlap. width is that of
// the viewBox: a chart across the page gets a wider one, so its text is not drawn larger.
func groupedChart(title, yTitle, xTitle string, width float64, ss []series, format func(float64) string) chart {
	c := chart{Title: title, Width: width, Height: chartH, Series: ss, YTitle: yTitle, XTitle: xTitle,
		Left: chartLeft, TickX: chartLeft - 6, Base: chartH - chartBottom, LabelY: chartH - chartBottom + 18,
		XTitleY: chartH - 4, MidX: chartLeft + (width-chartLeft)/2, MidY: chartTop + (chartH-chartBottom-chartTop)/2}
	if len(ss) == 0 || len(ss[0].Points) == 0 {
		return c
	}
	c.Points = ss[0].Points
	for i, p := range ss[0].Points {
		r := tableRow{Label: p.Label}
		if p.Partial {
			r.Label += " (so far)"
		}
		for _, s := range ss {
			r.Values = append(r.Values, s.Points[i].Display)
		}
		c.Rows = append(c.Rows, r)
	}
	maxV := 0.0
	for _, s := range ss {
		for _, p := range s.Points {
			maxV = max(maxV, p.Value)
		}
	}
	top, step := niceScale(maxV)
	c.Max = format(maxV)
	plotH := c.Base - chartTop
	for v := 0.0; v <= top+step/2; v += step {
		c.Ticks = append(c.Ticks, tick{Y: c.Base - v/top*plotH, Label: format(v)})
	}
	n := len(ss[0].Points)
	slot := (width - chartLeft) / float64(n)
	every := max(1, (n+7)/8)
	bw := slot * 0.8 / float64(len(ss))
	for si, s := range ss {
		for i, p := range s.Points {
			h := p.Value / top * plotH
			b := bar{
				X: chartLeft + float64(i)*slot + slot*0.1 + float64(si)*bw, W: bw, Y: c.Base - h, H: h,
				Label: p.Label, Display: p.Display, Class: s.Class, Partial: p.Partial, SoFar: p.Partial && si == 0,
				LabelX: chartLeft + float64(i)*slot + slot/2, Anchor: "middle",
				// Once per slot (under the first series), every few slots and the last one, never
				// two labels close enough to touch.
				ShowLabel: si == 0 && (i%every == 0 && n-1-i >= (every+1)/2 || i == n-1),
			}
			b.SoFarX, b.SoFarAt = b.X+b.W/2, "middle"
			if b.SoFarX+25 > width {
				b.SoFarX, b.SoFarAt = width, "end"
			}
			if p.Partial {
				c.Note = "The lighter bar is " + p.Label + " so far: it is still running."
			}
			if b.ShowLabel && i == n-1 {
				b.Anchor, b.LabelX = "end", width
			}
			c.Bars = append(c.Bars, b)
		}
	}
	return c
}

// niceScale picks the top of the value axis and its step: 1, 2, 2.5 or 5 times a power of ten,
// four or five gridlines, the highest value under the top.
func niceScale(maxV float64) (top, step float64) {
	if maxV <= 0 {
		return 4, 1
	}
	raw := maxV / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	if step < 1 {
		step = 1 // counts and dollars: no fractional gridlines
	}
	return math.Ceil(maxV/step) * step, step
}

// compact writes an axis number short: 950, 1.2k, 12k, 3.4M.
func compact(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trimZero(strconv.FormatFloat(v/1e6, 'f', 1, 64)) + "M"
	case a >= 1e3:
		return trimZero(strconv.FormatFloat(v/1e3, 'f', 1, 64)) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func compactMoney(v float64) string { return "$" + compact(v) }

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// hbarChart is a horizontal bar chart for ranked labels (top tags); each bar carries its value.
// empty is what it says when there are none.
func hbarChart(title, empty string, pts []point) chart {
	c := chart{Title: title, Empty: empty, Width: chartW, Points: pts, Left: hbarLabelW}
	for _, p := range pts {
		c.Rows = append(c.Rows, tableRow{Label: p.Label, Values: []string{p.Display}})
	}
	const rowH = 26.0
	c.Height = rowH*float64(len(pts)) + 4
	maxV := 0.0
	for _, p := range pts {
		maxV = max(maxV, p.Value)
	}
	if maxV == 0 {
		maxV = 1
	}
	for i, p := range pts {
		w := p.Value / maxV * (chartW - hbarLabelW - 110)
		c.Bars = append(c.Bars, bar{
			X: hbarLabelW, Y: float64(i)*rowH + 4, H: rowH - 8, W: w, Class: "bar",
			Label: p.Label, Display: p.Display, ShowLabel: true, LabelX: float64(i)*rowH + rowH/2 + 5,
			ValueX: hbarLabelW + w + 6,
		})
	}
	return c
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
