//go:build linux

package ingest_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal: what the sweep writes to tty arrives at pt.
func openPTY(t *testing.T) (pt, tty *os.File) {
	t.Helper()
	pt, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { pt.Close() })
	var n uint32
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, pt.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("no pseudo-terminals here: %v", e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, pt.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("no pseudo-terminals here: %v", e)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	return pt, tty
}

// On a terminal a backfill draws one bar that it redraws in place (carriage returns, no line
// per page) and ends full, with the count Keap gave; off a terminal it writes plain lines
// (TestBackfillWithoutACountIsCompleteAndSaysSo).
func TestBackfillDrawsABarOnATerminal(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 20)
	pt, tty := openPTY(t)
	screen := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(pt) // ends with EIO once the terminal side is closed
		screen <- string(b)
	}()
	w.sweeper.Progress, w.sweeper.PageSize = tty, 5
	err := w.sweeper.Backfill(context.Background(), w.account, []string{"contact"})
	tty.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := <-screen
	full := "[" + strings.Repeat("=", 30) + "] 20/20"
	if !strings.Contains(out, full) {
		t.Errorf("terminal shows %q; want the bar ending full: %q", out, full)
	}
	if n := strings.Count(out, "\r"); n < 4 {
		t.Errorf("terminal shows %q; want the bar redrawn in place for each of the 4 pages", out)
	}
	if strings.Count(strings.TrimRight(out, "\r\n"), "\n") != 0 {
		t.Errorf("terminal shows %q; want one line, ended once", out)
	}
}
