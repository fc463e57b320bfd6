package dashboard

import (
	"strings"
	"testing"
)

// Issue #12: one oversized record made the dead-letters page 2.1 MB. The page shows the start of
// a big payload and links to the whole of it, which only members of its account can fetch.
func TestDeadLettersTruncateBigPayloads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.scalar(`insert into keapsync.dead_letters (account_id, source, object_type, keap_id, error, payload)
	  values ($1, 'ingest', 'contact', 4242, 'too big to apply',
	          jsonb_build_object('id', 4242, 'notes', repeat('x', 2200000), 'after_the_long_notes', 'END-OF-PAYLOAD'))
	  returning id::text`, accountA)
	c := e.as(adminA)
	resp, page := c.get("/dead-letters")
	if resp.StatusCode != 200 || !strings.Contains(page, "Keap #4242") {
		t.Fatalf("dead letters: %d %.300s", resp.StatusCode, page)
	}
	if len(page) > 200_000 || strings.Contains(page, "END-OF-PAYLOAD") {
		t.Fatalf("the page carries the whole payload (%d bytes)", len(page))
	}
	link := "/dead-letters/" + id + "/payload"
	if !strings.Contains(page, `href="`+link+`"`) {
		t.Fatalf("no link to the full payload in the page")
	}
	// A small payload is still shown whole.
	if !strings.Contains(page, "email address is invalid") {
		t.Fatalf("the other dead letter is missing")
	}
	resp, full := c.get(link)
	if resp.StatusCode != 200 || len(full) < 2_200_000 || !strings.Contains(full, "END-OF-PAYLOAD") ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("full payload: %d, %d bytes, %s", resp.StatusCode, len(full), resp.Header.Get("Content-Type"))
	}
	if resp, _ := e.as(adminB).get(link); resp.StatusCode != 404 {
		t.Errorf("B's admin fetching A's payload: %d, want 404", resp.StatusCode)
	}
}
