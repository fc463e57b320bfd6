package httpguard_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/httpguard"
)

// A stream (the dashboard's events, a big export) outlives the read and write timeouts once it
// calls Stream; without it net/http cancels the request and cuts the writes.
func TestStreamOutlivesTheTimeouts(t *testing.T) {
	const lines = 10
	for _, stream := range []bool{true, false} {
		ended := make(chan error, 1)
		srv := httpguard.Config{ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond}.Server(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if stream {
					if err := httpguard.Stream(w, time.Minute); err != nil {
						t.Error(err)
					}
				}
				for i := 0; i < lines; i++ {
					// Each line waits past both timeouts since the last.
					select {
					case <-r.Context().Done():
						ended <- r.Context().Err()
						return
					case <-time.After(150 * time.Millisecond):
					}
					fmt.Fprintf(w, "line %d\n", i)
					http.NewResponseController(w).Flush()
				}
				ended <- nil
			}))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		resp, err := http.Get("http://" + ln.Addr().String())
		got := 0
		if err == nil {
			for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
				got++
			}
			resp.Body.Close()
		}
		handlerErr := <-ended
		srv.Close()
		if stream && (got != lines || handlerErr != nil) {
			t.Errorf("with Stream: %d of %d lines, handler ended with %v", got, lines, handlerErr)
		}
		if !stream && got == lines {
			t.Errorf("without Stream the timeouts did not apply; the test proves nothing")
		}
	}
}
