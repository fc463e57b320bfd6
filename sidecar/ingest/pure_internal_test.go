package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// A dead letter records Keap's HTTP status when the error carries one, wrapped or not.
func TestStatusOf(t *testing.T) {
	t.Parallel()
	if s := statusOf(fmt.Errorf("fetch: %w", &keap.APIError{Status: 422})); s == nil || *s != 422 {
		t.Errorf("a wrapped 422: %v", s)
	}
	if s := statusOf(errors.New("connection reset")); s != nil {
		t.Errorf("no status: %v", *s)
	}
}

// A hook of ours at an older path under the public URL is stale (re-verification removes it);
// another host's, or the public URL's with another scheme, is not ours. Case, a default port and
// a trailing / do not make a URL another.
func TestIsOurStaleURL(t *testing.T) {
	t.Parallel()
	const public = "https://Sync.Example.com:443/"
	for url, want := range map[string]bool{
		"https://sync.example.com/hooks/old-token":      true,
		"https://SYNC.example.com:443/hooks/x/":         true,
		"https://sync.example.com/other/hooks/x":        false,
		"http://sync.example.com/hooks/x":               false,
		"https://elsewhere.example.com/hooks/old-token": false,
	} {
		if got := isOurStaleURL(url, public); got != want {
			t.Errorf("isOurStaleURL(%s) = %v, want %v", url, got, want)
		}
	}
}

// A read of changed records through a v2 filter by ids, given no ids, asks Keap nothing: an
// empty id filter is no filter, and the listing would walk the whole collection (the nil API
// panics if called). keap.Client.TagsByID keeps the same rule for tags (TestTagsByIDInV1Shape).
func TestChangedByNoIDsAsksNothing(t *testing.T) {
	for _, err := range kinds["product"].changed(context.Background(), nil, nil, time.Time{}) {
		t.Errorf("no ids yielded %v", err)
	}
}
