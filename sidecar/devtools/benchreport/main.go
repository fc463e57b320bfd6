// Command benchreport turns `go test -bench` output into the one table `make bench` prints: every
// figure each benchmark reported, with the goal where the metric names one (a unit such as
// "ratio(goal>=0.5)"), and the machine it ran on. With -out it also writes the table, dated and
// with the command, to a Markdown file (docs/benchmarks.md).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type row struct {
	bench, metric, value, goal, verdict string
}

var goalPattern = regexp.MustCompile(`^(.*)\(goal\s*(<=|>=|<|>)\s*([0-9.]+)\)$`)

// changesPattern finds the number of changes a benchmark's name says it ran with.
var changesPattern = regexp.MustCompile(`/changes=([0-9]+)\b`)

// goals for metrics whose benchmarks do not name theirs in the unit (from the issues).
var goals = map[string][2]string{
	"budget-frac":          {">=", "0.95"},
	"budget-used":          {">=", "0.95"},
	"ratio-vs-recvlogical": {">=", "0.5"},
	"429s":                 {"<=", "0"},
}

func main() {
	out := flag.String("out", "", "also write the table to this Markdown file")
	command := flag.String("command", "make bench", "the command that produced the input, for the record")
	flag.Parse()
	rows, raw, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	table := render(rows)
	machine := machine()
	fmt.Println()
	fmt.Println(table)
	fmt.Println(machine)
	if *out != "" {
		doc := fmt.Sprintf("# Benchmarks\n\nLatest run: %s, `%s`.\n\n%s\n%s\n\nRaw output:\n\n```\n%s```\n",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), *command, table, machine, raw)
		if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
	}
	for _, r := range rows {
		if r.verdict == "missed" {
			fmt.Fprintln(os.Stderr, "benchreport: a goal was missed (see the table)")
			return // a report, not a gate: the figures are what they are
		}
	}
}

// parse reads benchmark lines ("BenchmarkX-2  1  123 ns/op  4.5 unit ...") and echoes the input.
func parse(r io.Reader) ([]row, string, error) {
	var rows []row
	var raw strings.Builder
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		if strings.HasPrefix(line, "pkg: ") {
			pkg = strings.TrimPrefix(line, "pkg: github.com/keapsync/keapsync/")
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		raw.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		name := pkg + " " + strings.TrimPrefix(f[0], "Benchmark")
		for i := 2; i+1 < len(f); i += 2 {
			unit := f[i+1]
			if unit == "ns/op" || unit == "B/op" || unit == "allocs/op" {
				continue
			}
			rw := row{bench: name, metric: unit, value: f[i]}
			if m := goalPattern.FindStringSubmatch(unit); m != nil {
				rw.metric, rw.goal = m[1], m[2]+" "+m[3]
				rw.verdict = verdict(f[i], m[2], m[3])
				// A per-1000 figure from fewer changes counts each list call against fewer
				// changes than the goal assumes: shown, not judged.
				if c := changesPattern.FindStringSubmatch(name); c != nil && strings.HasSuffix(rw.metric, "/1000-changes") {
					if k, _ := strconv.Atoi(c[1]); k < 1000 {
						rw.verdict = "not judged: fewer than 1000 changes"
					}
				}
			} else if g, ok := goals[unit]; ok {
				rw.goal, rw.verdict = g[0]+" "+g[1], verdict(f[i], g[0], g[1])
			} else if unit == "p95-ms" && strings.HasPrefix(name, "dashboard ") {
				// The goal is < 100 ms with 1M contacts; the row says how many it ran with.
				rw.goal, rw.verdict = "< 100 (at 1M contacts)", verdict(f[i], "<", "100")
				if !strings.Contains(name, "contacts=1000000") {
					rw.verdict = "not judged: fewer contacts"
				}
			}
			rows = append(rows, rw)
		}
	}
	return rows, raw.String(), sc.Err()
}

func verdict(value, op, goal string) string {
	v, err1 := strconv.ParseFloat(value, 64)
	g, err2 := strconv.ParseFloat(goal, 64)
	if err1 != nil || err2 != nil {
		return ""
	}
	ok := map[string]bool{"<=": v <= g, ">=": v >= g, "<": v < g, ">": v > g}[op]
	if ok {
		return "met"
	}
	return "missed"
}

func render(rows []row) string {
	var b strings.Builder
	b.WriteString("| benchmark | figure | value | goal | |\n| --- | --- | ---: | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.bench, r.metric, r.value, r.goal, r.verdict)
	}
	return b.String()
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(l, "MemTotal:")), " kB"), 64)
			mem = fmt.Sprintf(", %.0f GiB", kb/1024/1024)
		}
	}
	pg := ""
	if out, err := exec.Command("pg_config", "--version").Output(); err == nil {
		pg = ", " + strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("Machine: %s, %d cores%s, %s %s/%s%s", cpu, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH, pg)
}
