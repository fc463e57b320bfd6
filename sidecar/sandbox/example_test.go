package sandbox_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox"
	"github.com/keapsync/keapsync/sidecar/sandbox/keapspec"
)

// A test starts a sandbox on a free loopback port, talks to it with a personal key through a
// transport that holds every exchange to Keap's documents, and moves the sandbox clock.
func Example() {
	clock := sandbox.NewManualClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	srv, err := sandbox.New(sandbox.Options{Clock: clock, Seed: 1, Contacts: 100})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		panic(err)
	}
	defer srv.Close()

	v, err := keapspec.NewValidator()
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &keapspec.Transport{Validator: v, Report: func(err error) { fmt.Println("violation:", err) }}}
	req, _ := http.NewRequest("GET", srv.URL()+"/crm/rest/v1/contacts?limit=10", nil)
	req.Header.Set("X-Keap-API-Key", srv.Credentials().PersonalKey)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("x-keap-product-throttle-available"))

	tok := srv.IssueTokens()
	clock.Advance(24 * time.Hour) // the access token expires
	req, _ = http.NewRequest("GET", srv.URL()+"/crm/rest/v1/contacts/1", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// 200 239
	// 401
}
