package dashboard

import (
	"strconv"
)

// Charts are server-rendered SVG so the overview reads without JavaScript; every bar carries a
// <title> and the page also has the numbers as a table for screen readers.

type point struct {
	Label   string
	Value   float64
	Display string
}

type bar struct {
	X, Y, W, H float64
	Label      string
	Display    string
	ShowLabel  bool
	LabelX     float64 // vertical: x of the label; horizontal: y of the text baseline
	ValueX     float64 // horizontal: where the value text starts
	Anchor     string  // text-anchor of the label: the first one starts at the edge, not past it
}

type chart struct {
	Title  string
	Width  float64
	Height float64
	Bars   []bar
	Points []point
	Max    string
	Base   float64 // y of the axis line
	LabelY float64 // y of the labels under the bars
}

const chartW, chartH, chartPad = 600.0, 220.0, 24.0

// barChart is a vertical bar chart, labels under every few bars so they never overlap.
func barChart(title string, pts []point) chart {
	c := chart{Title: title, Width: chartW, Height: chartH, Points: pts, Base: chartH - chartPad, LabelY: chartH - 6}
	if len(pts) == 0 {
		return c
	}
	maxV := 0.0
	for _, p := range pts {
		maxV = max(maxV, p.Value)
	}
	if maxV == 0 {
		maxV = 1
	}
	c.Max = strconv.FormatFloat(maxV, 'f', 0, 64)
	slot := chartW / float64(len(pts))
	every := max(1, len(pts)/8)
	plotH := chartH - 2*chartPad
	for i, p := range pts {
		h := p.Value / maxV * plotH
		c.Bars = append(c.Bars, bar{
			X: float64(i)*slot + slot*0.1, W: slot * 0.8, Y: chartPad + plotH - h, H: h,
			Label: p.Label, Display: p.Display, ShowLabel: i%every == 0, LabelX: float64(i)*slot + slot/2,
			Anchor: "middle",
		})
		if i == 0 {
			c.Bars[0].Anchor, c.Bars[0].LabelX = "start", 0
		}
	}
	return c
}

// hbarChart is a horizontal bar chart for ranked labels (top tags).
func hbarChart(title string, pts []point) chart {
	c := chart{Title: title, Width: chartW, Points: pts}
	const rowH = 26.0
	c.Height = rowH*float64(len(pts)) + 4
	maxV := 0.0
	for _, p := range pts {
		maxV = max(maxV, p.Value)
	}
	if maxV == 0 {
		maxV = 1
	}
	const labelW = 150.0
	for i, p := range pts {
		w := p.Value / maxV * (chartW - labelW - 110)
		c.Bars = append(c.Bars, bar{
			X: labelW, Y: float64(i)*rowH + 4, H: rowH - 8, W: w,
			Label: p.Label, Display: p.Display, ShowLabel: true, LabelX: float64(i)*rowH + rowH/2 + 5,
			ValueX: labelW + w + 6,
		})
	}
	return c
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
