package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

var (
	goroutineHead = regexp.MustCompile(`^goroutine \d+ .*\[([^\],]+)`)
	ownFrame      = regexp.MustCompile(`(sidecar/[a-z/]+\.go:\d+)`)
)

// summarizeDump reads the last goroutine dump (SIGQUIT) in a serve log and returns, per
// state and innermost keapsync frame, how many goroutines wait there, plus the engine bugs it
// recognises by their stacks.
func summarizeDump(path string) (lines, bugs []string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []string{"read " + path + ": " + err.Error()}, nil
	}
	text := string(raw)
	i := strings.LastIndex(text, "SIGQUIT: quit")
	if i < 0 {
		return nil, nil
	}
	counts := map[string]int{}
	// Pool starvation: goroutines that already hold a pooled connection (a push worker keeps
	// its claim connection, with the record locks, while it calls Keap) wait for another one.
	var holders, waiting int
	waitAt := map[string]bool{}
	for _, block := range strings.Split(text[i:], "\n\n") {
		m := goroutineHead.FindStringSubmatch(block)
		if m == nil {
			continue
		}
		frame := ownFrame.FindString(block)
		if frame == "" {
			continue // runtime and library goroutines
		}
		counts[fmt.Sprintf("%-18s %s", m[1], frame)]++
		acquiring := strings.Contains(block, "pgxpool.(*Pool).Acquire")
		forLocked := m[1] == "sync.Mutex.Lock" && strings.Contains(block, "cmd/keapsync/clients.go")
		if acquiring {
			waiting++
			waitAt[frame] = true
		}
		if (acquiring || forLocked) && strings.Contains(block, "push/worker.go") {
			holders++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%3d × %s", counts[k], k))
	}
	if holders > 0 && waiting > 0 {
		at := make([]string, 0, len(waitAt))
		for f := range waitAt {
			at = append(at, f)
		}
		sort.Strings(at)
		bugs = append(bugs, fmt.Sprintf("pool starvation deadlock: %d push workers hold their claim connection "+
			"(sidecar/push/worker.go: claim, then p.run for each job on that conn) while the Keap call path needs a "+
			"second pooled connection (token load in sidecar/keapauth/store.go via keeper.Token, or the account "+
			"lookup in keapClients.For, sidecar/cmd/keapsync/clients.go, under kc.mu); %d goroutines wait in "+
			"pgxpool Acquire (%s). A pool too small for the workers' needs stops a serve that starts with a "+
			"backlog, or must reload its token, for good while /healthz answers 200",
			holders, waiting, strings.Join(at, ", ")))
	}
	return lines, bugs
}

// stuck is called when the system did not quiesce: it makes every serve print its goroutines
// and adds where they wait, and any engine bug recognised from that, to the report.
func (w *world) stuck(rep *Report) {
	for _, s := range w.serves {
		s.dump()
	}
	time.Sleep(2 * time.Second) // the runtime writes the dump and exits; the supervisor restarts it
	for _, s := range w.serves {
		lines, bugs := summarizeDump(s.out.Name())
		for _, l := range lines {
			rep.Stuck = append(rep.Stuck, "serve "+s.name+": "+l)
		}
		for _, b := range bugs {
			rep.EngineBugs = append(rep.EngineBugs, "serve "+s.name+": "+b)
		}
	}
}
