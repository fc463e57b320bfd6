package ingest

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress reports a long sweep: a bar with rate and ETA on a terminal, a line every few
// seconds otherwise (logs and CI), and nothing when out is nil.
type progress struct {
	out     io.Writer
	tty     bool
	label   string
	total   int64        // 0 when unknown
	totals  <-chan int64 // where set, the total once Keap has counted (see poll)
	done    int64
	resumed int64 // done before this run: not part of its rate
	printed int64 // done as of the last line written
	started time.Time
	last    time.Time
}

func newProgress(out io.Writer, label string, total int64) *progress {
	p := &progress{out: out, label: label, total: total, started: time.Now()}
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// resume counts rows an earlier, interrupted run did.
func (p *progress) resume(done int64) {
	p.done, p.resumed = done, done
}

// poll takes the total if it has been counted meanwhile.
func (p *progress) poll() {
	select {
	case t := <-p.totals:
		p.total, p.totals = t, nil
	default:
	}
}

func (p *progress) add(n int) {
	p.done += int64(n)
	p.poll()
	if p.out == nil {
		return
	}
	now := time.Now()
	if !p.tty && now.Sub(p.last) < 5*time.Second {
		return
	}
	p.last = now
	p.print(false)
}

func (p *progress) finish() {
	p.poll()
	// Off a terminal, the last line may already say it all.
	if p.out != nil && (p.tty || p.done != p.printed) {
		p.print(true)
	}
}

func (p *progress) print(final bool) {
	elapsed := time.Since(p.started).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done-p.resumed) / elapsed
	}
	eta := "?"
	if p.total > 0 && rate > 0 && p.done <= p.total {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
	}
	total := "?"
	if p.total > 0 {
		total = fmt.Sprint(p.total)
	}
	p.printed = p.done
	if !p.tty {
		fmt.Fprintf(p.out, "%s: %d/%s rows, %.0f rows/s, eta %s\n", p.label, p.done, total, rate, eta)
		return
	}
	bar := strings.Repeat(" ", 30)
	if p.total > 0 {
		n := min(int(30*p.done/p.total), 30)
		bar = strings.Repeat("=", n) + strings.Repeat(" ", 30-n)
	}
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.out, "\r%-13s [%s] %d/%s %.0f/s eta %s   %s", p.label, bar, p.done, total, rate, eta, end)
}
