package push_test

import (
	"testing"
)

// A company edited here that someone deleted in Keap meanwhile: Keap answers the PATCH with 404,
// and Keap's delete wins, as when its hook arrives. The delete is the company's: a contact that
// happens to have the same Keap id (ids are per type) is left alone.
func TestV2RecordDeletedInKeapIsDeletedHere(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	w.pushing()
	id := w.int(`insert into keap.companies (account_id, company_name) values ($1, 'Gone Inc') returning id`, w.account)
	w.quiet()
	kid := w.int(`select coalesce(keap_id, 0) from keap.companies where id = $1`, id)
	if kid == 0 {
		t.Fatal("no Keap id written back")
	}
	if w.int(`select count(*) from keap.contacts where account_id = $1 and keap_id = $2`, w.account, kid) != 1 {
		t.Fatalf("the test needs a contact with the company's Keap id %d", kid)
	}
	if err := w.sb.DeleteCompany(kid); err != nil {
		t.Fatal(err)
	}
	w.exec(`update keap.companies set website = 'https://gone.example' where id = $1`, id)
	w.quiet()
	if n := w.int(`select count(*) from keap.companies where id = $1`, id); n != 0 {
		t.Error("the company Keap deleted is still here")
	}
	if n := w.int(`select count(*) from keap.contacts where account_id = $1 and keap_id = $2`, w.account, kid); n != 1 {
		t.Errorf("the contact with Keap id %d was deleted for the company's 404", kid)
	}
	if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}
