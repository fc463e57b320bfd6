package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// keapsync runs this test binary as the keapsync command (see TestMain).
func keapsync(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	return cmd
}

// The process as a shell sees it: a failure exits 1 after its one line on stderr, success exits
// 0, and the first Ctrl-C stops a serving command cleanly (exit 0).
func TestProcessExitCodes(t *testing.T) {
	t.Parallel()
	out, err := keapsync(t, "no-such-command").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || strings.TrimSpace(string(out)) != `keapsync: unknown command "no-such-command" (keapsync --help lists the commands)` {
		t.Errorf("an unknown command: %v\n%s", err, out)
	}
	if out, err := keapsync(t, "keygen").Output(); err != nil || len(strings.TrimSpace(string(out))) != 44 {
		t.Errorf("keygen: %v %q", err, out)
	}

	cmd := keapsync(t, "sandbox", "--addr", "127.0.0.1:0", "--contacts", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && !strings.Contains(lines.Text(), "personal key:") {
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // the rest, so Wait does not wait on the pipe
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("sandbox after one Ctrl-C: %v, want exit 0", err)
	}
}
