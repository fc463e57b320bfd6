package ingest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// A batch of hooked note changes is read by id through v2, put in v1's shape, once the
// account's reads have found every v2 note so put to be the v1 one (keapsync.v2_agreement): one
// call for 300 changes among 1,500 notes, where listing them through v1 takes a page per 1,000.
// A note whose last updater the reads have not met is read through v1. Under each of FACTS §7's
// other answers (v2's note times in whole seconds; assigned_to_user not v1's user_id) the
// backfill finds the difference and says which, and the batch is listed through v1 as before.
// Either way every note is stored as v1's GET gives it, with v2's custom fields.
func TestHookedNotesThroughV2(t *testing.T) {
	for name, c := range map[string]struct {
		profile    sandbox.Profile
		difference string // "": v2 agrees
	}{
		"documented":       {},
		"times in seconds": {sandbox.Profile{NoteTimesInSeconds: true}, "date_created is "},
		"user unassigned":  {sandbox.Profile{NoteUserUnassigned: true}, "user_id is "},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, ids := newHookedWorld(t, "note", 1500, sandbox.Options{Profile: c.profile})
			var agreed, differed int
			var difference *string
			if err := w.db.QueryRow(context.Background(), `select agreed, differed, difference from keapsync.v2_agreement
				where account_id = $1 and object_type = 'note'`, w.account).Scan(&agreed, &differed, &difference); err != nil {
				t.Fatal(err)
			}
			switch {
			case c.difference == "" && (agreed != len(ids) || differed != 0):
				t.Errorf("the backfill compared %d notes: %d agreed, %d differed", len(ids), agreed, differed)
			case c.difference != "" && (differed != len(ids) || difference == nil || !strings.Contains(*difference, c.difference)):
				t.Errorf("the backfill compared %d notes: %d agreed, %d differed (%s), want all to differ in %q",
					len(ids), agreed, differed, deref(difference), c.difference)
			}

			w.worker.ListThreshold = 1
			changed := ids[100:400]
			if err := w.sb.EditNote(changed[0], map[string]any{"user_id": 99}); err != nil { // a user the reads never met
				t.Fatal(err)
			}
			w.changeInKeap(t, "note", changed[1:]) // delivers both edits' hooks
			w.drain(t)
			var byID, since, v1Listings, v1Gets, other int
			for _, r := range w.sb.Requests() {
				q := query(t, r.Query)
				switch {
				case r.Path == "/crm/rest/v2/notes" && strings.HasPrefix(q.Get("filter"), "ids=="):
					byID++
				case r.Path == "/crm/rest/v2/notes" && strings.HasPrefix(q.Get("filter"), "since_time=="):
					since++
				case r.Path == "/crm/rest/v1/notes":
					v1Listings++
				case strings.HasPrefix(r.Path, "/crm/rest/v1/notes/"):
					v1Gets++
				default:
					other++
				}
			}
			pages := (len(ids) + 999) / 1000
			if c.difference == "" && (byID != 2 || v1Gets != 1 || v1Listings+since+other != 0) {
				t.Errorf("%d changes, v2 agreeing: %d reads by id, %d v1 GETs, %d v1 listings, %d other calls; want the batch "+
					"read by id, and the note of a user not met a GET and its custom fields by id", len(changed), byID, v1Gets, v1Listings, other)
			}
			if c.difference != "" && (v1Listings != pages || since != pages || byID+v1Gets+other != 0) {
				t.Errorf("%d changes, v2 differing: %d v1 listings, %d v2 listings since, %d reads by id, %d v1 GETs, %d other calls; "+
					"want the %d pages of v1's listing and of v2's custom fields since", len(changed), v1Listings, since, byID, v1Gets, other, pages)
			}
			for _, id := range changed {
				want := noteAsStored(t, w.api, id)
				if w.count(t, `select count(*) from keap.notes where account_id = $1 and keap_id = $2 and keap_object = $3::jsonb`,
					w.account, id, string(want)) != 1 {
					t.Errorf("note %d is not stored as v1's GET gives it with v2's custom fields: %s", id, want)
				}
			}
		})
	}
}

// noteAsStored is v1's GET of a note with the custom_fields v2 gives it.
func noteAsStored(t *testing.T, api *keap.Client, id int64) json.RawMessage {
	t.Helper()
	ctx := context.Background()
	v1, err := api.GetObject(ctx, "/v1/notes", keap.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	var note map[string]json.RawMessage
	if err := json.Unmarshal(v1.Raw, &note); err != nil {
		t.Fatal(err)
	}
	for o, err := range api.Objects(ctx, "/v2/notes", keap.ObjectQuery{IDs: []keap.ID{keap.ID(id)}, Fields: []string{"custom_fields"}}) {
		if err != nil {
			t.Fatal(err)
		}
		var v2 struct {
			CustomFields json.RawMessage `json:"custom_fields"`
		}
		if err := json.Unmarshal(o.Raw, &v2); err != nil {
			t.Fatal(err)
		}
		note["custom_fields"] = v2.CustomFields
	}
	out, err := json.Marshal(note)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return "no difference"
	}
	return *s
}
