package sandbox

import (
	"context"
	"testing"
)

// The person's side of Keap (edits in the web app, no API credential): companies, products and
// tasks are created, edited and deleted, tags made, applied and removed, contacts deleted, and
// the state shows each step; a refused input says why.
func TestPersonEditsEveryType(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 2})
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	co, err := srv.CreateCompany(map[string]any{"company_name": "Acme"})
	must("create company", err)
	must("edit company", srv.EditCompany(co, map[string]any{"company_name": "Acme Ltd"}))
	if st := srv.Snapshot(); len(st.Companies) != 1 || st.Companies[0]["company_name"] != "Acme Ltd" {
		t.Errorf("companies: %v", st.Companies)
	}
	must("delete company", srv.DeleteCompany(co))
	if _, err := srv.CreateCompany(map[string]any{}); err == nil {
		t.Error("a company without a name was made")
	}
	if err := srv.EditCompany(co, map[string]any{"company_name": "gone"}); err == nil {
		t.Error("a deleted company was edited")
	}

	before := len(srv.Snapshot().Products)
	p, err := srv.CreateProduct(map[string]any{"name": "Widget"})
	must("create product", err)
	must("edit product", srv.EditProduct(p, map[string]any{"name": "Widget 2"}))
	must("delete product", srv.DeleteProduct(p))
	if after := len(srv.Snapshot().Products); after != before {
		t.Errorf("products: %d after create and delete, %d before", after, before)
	}

	task, err := srv.CreateTask(map[string]any{"title": "Call", "assigned_to_user_id": "1"})
	must("create task", err)
	must("edit task", srv.EditTask(task, map[string]any{"title": "Call back"}))
	must("delete task", srv.DeleteTask(task))
	if _, err := srv.CreateTask(map[string]any{"title": "Nobody's"}); err == nil {
		t.Error("a task without an assignee was made")
	}

	tag, err := srv.CreateTag("VIP", "")
	must("create tag", err)
	must("apply tag", srv.ApplyTag(1, tag))
	must("remove tag", srv.RemoveTag(1, tag))
	if err := srv.ApplyTag(999, tag); err == nil {
		t.Error("a tag applied to no contact")
	}
	must("delete contact", srv.DeleteContact(2))
	if err := srv.DeleteContact(2); err == nil {
		t.Error("a contact deleted twice")
	}
	if len(srv.Snapshot().Contacts) != 1 {
		t.Errorf("contacts after one delete: %d", len(srv.Snapshot().Contacts))
	}

	srv.SetAutoApprove(true)
	if len(srv.Hooks()) != 0 {
		t.Errorf("hooks nobody subscribed: %v", srv.Hooks())
	}
	if err := srv.WaitHooksIdle(context.Background()); err != nil {
		t.Errorf("no hooks: %v", err)
	}
	if srv.Now().IsZero() {
		t.Error("no clock")
	}
}
