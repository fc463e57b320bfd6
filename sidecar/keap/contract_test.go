package keap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/objecttype"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// The contract tests call every operation the sync uses against the sandbox over HTTP, with
// keapspec checking each request and response against Keap's documents.

func TestContractContacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 20, Seed: 1}})
	c, ctx := e.client, context.Background()

	tier, err := e.srv.AddCustomField("Tier", "Dropdown", "Gold", "Silver")
	if err != nil {
		t.Fatal(err)
	}
	model, err := c.GetContactModel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(model.CustomFields) == 0 || len(model.Raw) == 0 || !slices.Contains(model.OptionalProperties, PropCustomFields) {
		t.Fatalf("model: %+v", model)
	}
	if last := model.CustomFields[len(model.CustomFields)-1]; last.ID != ID(tier) || last.Label != "Tier" ||
		len(last.Options) != 2 || last.Options[0].Label != "Gold" || last.Options[0].ID == "" {
		t.Fatalf("a select field in the model: %+v", last)
	}
	field := model.CustomFields[0].ID

	created, err := c.CreateContact(ctx, map[string]any{"given_name": "Ada", "family_name": "Lovelace",
		"email_addresses": []map[string]string{{"email": "ada@example.com", "field": "EMAIL1"}},
		"custom_fields":   []map[string]any{{"id": field, "content": "violet"}}})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == 0 || created.Email() != "ada@example.com" || created.LastUpdated.IsZero() || len(created.Raw) == 0 {
		t.Fatalf("created: %+v", created)
	}

	got, err := c.GetContact(ctx, created.ID, PropCustomFields, PropJobTitle)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.CustomFields) != 1 || got.CustomFields[0].ID != field || string(got.CustomFields[0].Content) != `"violet"` {
		t.Fatalf("custom fields: %+v", got.CustomFields)
	}
	var raw map[string]any
	if err := json.Unmarshal(got.Raw, &raw); err != nil || raw["given_name"] != "Ada" {
		t.Fatalf("raw JSON kept as received: %s", got.Raw)
	}

	// PATCH with update_mask changes only the masked property.
	patched, err := c.UpdateContact(ctx, created.ID, map[string]any{"given_name": "Nope", "family_name": "King"}, "family_name")
	if err != nil {
		t.Fatal(err)
	}
	if patched.GivenName != "Ada" || patched.FamilyName != "King" || !patched.LastUpdated.After(created.LastUpdated.Time) {
		t.Fatalf("patched: %+v", patched)
	}

	// PUT with duplicate_option updates the contact matched by email.
	up, err := c.UpsertContact(ctx, DuplicateEmail, map[string]any{"given_name": "Augusta",
		"email_addresses": []map[string]string{{"email": "ADA@example.com", "field": "EMAIL1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != created.ID || up.GivenName != "Augusta" {
		t.Fatalf("upsert matched %d (%s), want %d", up.ID, up.GivenName, created.ID)
	}
	other, err := c.UpsertContact(ctx, DuplicateEmail, json.RawMessage(`{"email_addresses":[{"email":"new@example.com","field":"EMAIL1"}]}`))
	if err != nil || other.ID == created.ID {
		t.Fatalf("upsert without a match must create: %+v %v", other, err)
	}

	// The email filter.
	page, err := c.ListContacts(ctx, ContactQuery{Email: "ada@example.com", OptionalProperties: []string{PropTagIDs}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].ID != created.ID || page.Count != 1 {
		t.Fatalf("email filter: %+v", page)
	}

	if err := c.DeleteContact(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetContact(ctx, created.ID)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, ErrNotFound) || apiErr.Message == "" {
		t.Fatalf("get deleted: %v", err)
	}
}

func TestContractTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 5, Seed: 2}})
	c, ctx := e.client, context.Background()

	cat, err := c.CreateTagCategory(ctx, "Sync", "made by the client test")
	if err != nil {
		t.Fatal(err)
	}
	tag, err := c.CreateTag(ctx, TagInput{Name: "Synced", Description: "d", CategoryID: cat.ID})
	if err != nil {
		t.Fatal(err)
	}
	if tag.Category == nil || tag.Category.ID != cat.ID {
		t.Fatalf("tag: %+v", tag)
	}
	tag2, err := c.CreateTag(ctx, TagInput{Name: "Second"})
	if err != nil {
		t.Fatal(err)
	}
	if g, err := c.GetTag(ctx, tag.ID); err != nil || g.Name != "Synced" {
		t.Fatalf("get tag: %+v %v", g, err)
	}
	all, err := Collect(c.Tags(ctx, TagQuery{Limit: 3}))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 14 {
		t.Fatalf("tags: %d", len(all))
	}
	byCat, err := c.ListTags(ctx, TagQuery{Category: cat.ID})
	if err != nil || len(byCat.Items) != 1 {
		t.Fatalf("by category: %+v %v", byCat, err)
	}

	contacts, err := Collect(c.Contacts(ctx, ContactQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	a, b := contacts[0].ID, contacts[1].ID

	// Contact side: apply answers an object keyed by tag id on the wire.
	res, err := c.ApplyTags(ctx, a, tag.ID, tag2.ID, 999999)
	if err != nil {
		t.Fatal(err)
	}
	if res[tag.ID] != TagSuccess || res[999999] != TagNotFound || len(res.Failed()) != 1 {
		t.Fatalf("apply results: %v", res)
	}
	if res, err = c.ApplyTags(ctx, a, tag.ID); err != nil || res[tag.ID] != TagDuplicate {
		t.Fatalf("re-apply: %v %v", res, err)
	}
	ct, err := Collect(c.ContactTags(ctx, a))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ct, func(x ContactTag) bool { return x.Tag.ID == tag.ID && !x.DateApplied.IsZero() }) {
		t.Fatalf("contact tags: %+v", ct)
	}
	if err := c.RemoveTags(ctx, a, tag.ID, tag2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyTags(ctx, a, tag2.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveTags(ctx, a, tag2.ID); err != nil { // the single-tag path
		t.Fatal(err)
	}

	// Tag side.
	res, err = c.ApplyTagToContacts(ctx, tag.ID, a, b)
	if err != nil || res[a] != TagSuccess || res[b] != TagSuccess {
		t.Fatalf("apply to contacts: %v %v", res, err)
	}
	tc, err := Collect(c.TaggedContacts(ctx, tag.ID))
	if err != nil || len(tc) != 2 || tc[0].Contact.ID == 0 {
		t.Fatalf("tagged contacts: %+v %v", tc, err)
	}
	if err := c.RemoveTagFromContacts(ctx, tag.ID, a); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveTagFromContacts(ctx, tag.ID, a, b); err != nil {
		t.Fatal(err)
	}
	if tc, err = Collect(c.TaggedContacts(ctx, tag.ID)); err != nil || len(tc) != 0 {
		t.Fatalf("after removal: %+v %v", tc, err)
	}
	if _, err := c.ApplyTags(ctx, 999999, tag.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("apply to unknown contact: %v", err)
	}
}

func TestContractOrders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 30, Seed: 3}})
	c, ctx := e.client, context.Background()
	contacts, err := Collect(c.Contacts(ctx, ContactQuery{Limit: 10}))
	if err != nil || len(contacts) != 30 {
		t.Fatalf("contacts: %d %v", len(contacts), err)
	}
	who := contacts[0].ID

	o, err := c.CreateOrder(ctx, OrderInput{ContactID: who, OrderDate: Time{e.clock.Now()}, OrderTitle: "Client test",
		OrderType: "Online", OrderItems: []OrderItemInput{{ProductID: 1, Quantity: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if o.ID == 0 || o.ContactID != who || len(o.OrderItems) != 1 || len(o.Raw) == 0 {
		t.Fatalf("created order: %+v", o)
	}
	item, err := c.AddOrderItem(ctx, o.ID, OrderItemInput{ProductID: 2, Quantity: 1, Price: "9.99", Description: "extra"})
	if err != nil || item.ID == 0 || float64(item.Price) != 9.99 {
		t.Fatalf("add item: %+v %v", item, err)
	}
	got, err := c.GetOrder(ctx, o.ID)
	if err != nil || len(got.OrderItems) != 2 || got.ContactID != who || got.ModificationDate.IsZero() {
		t.Fatalf("get order: %+v %v", got, err)
	}
	if err := c.DeleteOrderItem(ctx, o.ID, item.ID); err != nil {
		t.Fatal(err)
	}
	pay, err := c.CreatePayment(ctx, o.ID, PaymentInput{PaymentAmount: "1.00", PaymentMethodType: "CASH", Notes: "test"})
	if err != nil || pay.ID == 0 {
		t.Fatalf("payment: %+v %v", pay, err)
	}
	pays, err := c.OrderPayments(ctx, o.ID)
	if err != nil || len(pays) != 1 || float64(pays[0].Amount) != 1 || pays[0].PayDate.IsZero() {
		t.Fatalf("payments: %+v %v", pays, err)
	}
	// An order with a payment cannot be deleted: a 4xx with Keap's message, not retried.
	if err := c.DeleteOrder(ctx, o.ID); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("delete paid order: %v", err)
	}
	o2, err := c.CreateOrder(ctx, OrderInput{ContactID: who, OrderDate: Time{e.clock.Now()}, OrderTitle: "Gone",
		OrderType: "Offline", OrderItems: []OrderItemInput{{ProductID: 1, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteOrder(ctx, o2.ID); err != nil {
		t.Fatal(err)
	}

	mine, err := Collect(c.Orders(ctx, OrderQuery{ContactID: who}))
	if err != nil || len(mine) == 0 || !slices.ContainsFunc(mine, func(x Order) bool { return x.ID == o.ID }) {
		t.Fatalf("orders of contact: %d %v", len(mine), err)
	}
	paid := false
	unpaid, err := Collect(c.Orders(ctx, OrderQuery{Paid: &paid, ProductID: 1, Limit: 5}))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range unpaid {
		if float64(x.TotalDue) <= 0 {
			t.Fatalf("paid=false returned a paid order: %+v", x)
		}
	}
	all, err := Collect(c.Orders(ctx, OrderQuery{Limit: 4}))
	if err != nil {
		t.Fatal(err)
	}
	since, err := Collect(c.OrdersSince(ctx, time.Time{}, OrderQuery{Limit: 3}))
	if err != nil {
		t.Fatal(err)
	}
	if len(since) != len(all) {
		t.Fatalf("OrdersSince: %d orders, list has %d", len(since), len(all))
	}
}

func TestContractSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 60, Seed: 4}})
	c, ctx := e.client, context.Background()
	v1, err := Collect(c.Subscriptions(ctx, SubscriptionQuery{Limit: 2}))
	if err != nil || len(v1) == 0 {
		t.Fatalf("v1 subscriptions: %d %v", len(v1), err)
	}
	plan := v1[0].SubscriptionPlanID
	created, err := c.CreateSubscription(ctx, SubscriptionInput{ContactID: v1[0].ContactID, SubscriptionPlanID: plan, Quantity: 2})
	if err != nil || created.ID == 0 || created.SubscriptionPlanID != plan {
		t.Fatalf("create: %+v %v", created, err)
	}
	mine, err := c.ListSubscriptions(ctx, SubscriptionQuery{ContactID: v1[0].ContactID})
	if err != nil || len(mine.Items) < 2 {
		t.Fatalf("by contact: %+v %v", mine, err)
	}

	// v2: string ids, modification_time, page tokens.
	v2, err := Collect(c.SubscriptionsV2(ctx, SubscriptionV2Query{PageSize: 2, OrderBy: "modification_time asc"}))
	if err != nil || len(v2) != len(v1)+1 {
		t.Fatalf("v2: %d (v1 had %d) %v", len(v2), len(v1), err)
	}
	if !slices.IsSortedFunc(v2, func(a, b Subscription) int { return a.ModificationTime.Compare(b.ModificationTime.Time) }) {
		t.Fatal("v2 not in modification order")
	}
	if err := e.srv.SetSubscriptionActive(int64(created.ID), false); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetSubscriptionV2(ctx, created.ID)
	if err != nil || got.ID != created.ID || bool(got.Active) || got.ModificationTime.IsZero() {
		t.Fatalf("v2 get: %+v %v", got, err)
	}
	byContact, err := c.ListSubscriptionsV2(ctx, SubscriptionV2Query{ContactID: v1[0].ContactID})
	if err != nil || len(byContact.Items) != len(mine.Items) {
		t.Fatalf("v2 by contact: %+v %v", byContact, err)
	}
}

func TestContractHooks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Seed: 5}})
	c, ctx := e.client, context.Background()

	var mu sync.Mutex
	var lastSecret string
	echo := true
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if s := r.Header.Get("X-Hook-Secret"); s != "" {
			lastSecret = s
			if echo {
				w.Header().Set("X-Hook-Secret", s)
			}
		}
	}))
	t.Cleanup(recv.Close)

	keys, err := c.HookEventKeys(ctx)
	if err != nil || !slices.Contains(keys, "contact.edit") {
		t.Fatalf("event keys: %v %v", keys, err)
	}
	h, err := c.CreateHook(ctx, "contact.edit", recv.URL+"/hooks")
	if err != nil || h.Key == "" || h.Status != HookVerified {
		t.Fatalf("create: %+v %v", h, err)
	}
	mu.Lock()
	echo = false
	mu.Unlock()
	h2, err := c.CreateHook(ctx, "contact.add", recv.URL+"/hooks")
	if err != nil || h2.Status != HookUnverified {
		t.Fatalf("create unverified: %+v %v", h2, err)
	}
	mu.Lock()
	secret := lastSecret
	mu.Unlock()
	if h2, err = c.DelayedVerifyHook(ctx, h2.Key, secret); err != nil || h2.Status != HookVerified {
		t.Fatalf("delayed verify: %+v %v", h2, err)
	}
	if h, err = c.UpdateHook(ctx, h.Key, "contact.delete", recv.URL+"/other"); err != nil || h.EventKey != "contact.delete" {
		t.Fatalf("update: %+v %v", h, err)
	}
	if h, err = c.VerifyHook(ctx, h.Key); err != nil || h.Key == "" {
		t.Fatalf("verify: %+v %v", h, err)
	}
	if g, err := c.GetHook(ctx, h.Key); err != nil || g.HookURL != recv.URL+"/other" {
		t.Fatalf("get: %+v %v", g, err)
	}
	list, err := c.ListHooks(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := c.DeleteHook(ctx, h.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetHook(ctx, h.Key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted hook: %v", err)
	}
	if _, err := c.CreateHook(ctx, "no.such.event", recv.URL); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad event key: %v", err)
	}
}

// Notes are a v1 resource read and written by the generic object calls: listed by offset over
// next links, clock last_updated, patched with only the properties in the body.
func TestContractNotes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 3, Seed: 5}})
	c, ctx := e.client, context.Background()
	contacts, err := c.ListContacts(ctx, ContactQuery{Limit: 1})
	if err != nil || len(contacts.Items) == 0 {
		t.Fatalf("contacts: %v", err)
	}
	contact := int64(contacts.Items[0].ID)
	var ids []ID
	for i := range 5 {
		o, err := c.CreateObject(ctx, "/v1/notes", map[string]any{"contact_id": contact, "title": "n", "body": string(rune('a' + i)), "type": "Other"})
		if err != nil || o.ID == 0 || o.Modified().IsZero() {
			t.Fatalf("create: %+v %v", o, err)
		}
		ids = append(ids, o.ID)
	}
	all, err := Collect(c.Objects(ctx, "/v1/notes", ObjectQuery{PageSize: 2}))
	if err != nil || len(all) != 5 {
		t.Fatalf("listed %d notes over pages of 2: %v", len(all), err)
	}
	if _, err := Collect(c.Objects(ctx, "/v1/notes", ObjectQuery{Since: time.Now()})); err == nil {
		t.Error("a v1 listing took a since it cannot filter by")
	}
	before, err := c.GetObject(ctx, "/v1/notes", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	after, err := c.UpdateObject(ctx, "/v1/notes", ids[0], map[string]any{"body": "changed"}, "body")
	if err != nil || !after.Modified().After(before.Modified()) {
		t.Fatalf("update: %+v %v", after, err)
	}
	var got map[string]any
	if err := json.Unmarshal(after.Raw, &got); err != nil || got["body"] != "changed" || got["title"] != "n" {
		t.Errorf("after the update: %s", after.Raw)
	}
	patches := 0
	for _, r := range e.srv.Requests() {
		if r.Method == http.MethodPatch {
			patches++
			if r.Query != "" {
				t.Errorf("a v1 PATCH sent a query: %s", r.Query)
			}
		}
	}
	if patches != 1 {
		t.Errorf("%d PATCHes logged, want 1", patches)
	}
	if err := c.DeleteObject(ctx, "/v1/notes", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetObject(ctx, "/v1/notes", ids[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted note: %v", err)
	}
}

// Every model the registry names is served at its path, validated against Keap's documents, and
// lists the record type's own custom fields, with v1's numeric or v2's string ids (tasks and
// notes share theirs, as Keap documents).
func TestContractModels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 2, Seed: 1}})
	recordTypes := map[string]string{"contact": "CONTACT", "company": "COMPANY", "task": "TASK_NOTE_APPOINTMENT", "opportunity": "OPPORTUNITY",
		"subscription": "SUBSCRIPTION", "note": "TASK_NOTE_APPOINTMENT", "order": "ORDER"}
	for _, ty := range objecttype.All {
		if ty.Model == "" {
			continue
		}
		rt, ok := recordTypes[ty.Name]
		if !ok {
			t.Fatalf("%s: no sandbox record type for its model %s", ty.Name, ty.Model)
		}
		id, err := e.srv.AddCustomFieldTo(rt, "Only "+ty.Name, "WholeNumber")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := e.client.GetModel(context.Background(), ty.Model)
		if err != nil {
			t.Fatalf("%s: %v", ty.Model, err)
		}
		var model struct {
			CustomFields []struct {
				ID        json.Number `json:"id"`
				Label     string      `json:"label"`
				FieldType string      `json:"field_type"`
			} `json:"custom_fields"`
		}
		if err := json.Unmarshal(raw, &model); err != nil {
			t.Fatalf("%s: %v", ty.Model, err)
		}
		var labels []string
		for _, f := range model.CustomFields {
			labels = append(labels, f.Label)
			if f.Label == "Only "+ty.Name && (f.ID.String() != strconv.FormatInt(id, 10) || !strings.EqualFold(strings.ReplaceAll(f.FieldType, "_", ""), "WholeNumber")) {
				t.Errorf("%s: field %+v, want id %d of type WholeNumber", ty.Model, f, id)
			}
			if other, ok := strings.CutPrefix(f.Label, "Only "); ok && recordTypes[other] != rt {
				t.Errorf("%s lists another record type's field %q", ty.Model, f.Label)
			}
		}
		if !slices.Contains(labels, "Only "+ty.Name) {
			t.Errorf("%s: labels %v", ty.Model, labels)
		}
	}
}

// The v2 reads and writes of notes' and orders' custom fields (v1's records carry none), as
// ingest and push make them: listings by ids and by update time under each collection's filter
// name, and the PATCH of the custom fields alone; every exchange held to Keap's documents.
func TestContractCustomFieldsOfV1Types(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 3, Seed: 5}})
	c, ctx := e.client, context.Background()
	start := e.clock.Now()
	contacts, err := c.ListContacts(ctx, ContactQuery{Limit: 1})
	if err != nil || len(contacts.Items) == 0 {
		t.Fatalf("contacts: %v", err)
	}
	contact := contacts.Items[0].ID
	note, err := c.CreateObject(ctx, "/v1/notes", map[string]any{"contact_id": contact, "title": "n", "user_id": 1})
	if err != nil {
		t.Fatal(err)
	}
	order, err := c.CreateOrder(ctx, OrderInput{ContactID: contact, OrderDate: Time{e.clock.Now()}, OrderTitle: "o", OrderType: "Online",
		OrderItems: []OrderItemInput{{ProductID: 1, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		recordType, list, sinceFilter, patch, path string
		fields                                     []string
		body                                       map[string]any
		id                                         ID
	}{
		{"TASK_NOTE_APPOINTMENT", "/v2/notes", "since_time", "/v2/contacts/{parent_id}/notes/{id}",
			fmt.Sprintf("/v2/contacts/%d/notes/%d", contact, note.ID), []string{"custom_fields"}, map[string]any{"user_id": "1"}, note.ID},
		{"ORDER", "/v2/orders", "modified_since_time", "/v2/orders/{id}", fmt.Sprintf("/v2/orders/%d", order.ID), nil, map[string]any{}, order.ID},
	} {
		field, err := e.srv.AddCustomFieldTo(tc.recordType, "Code", "Text")
		if err != nil {
			t.Fatal(err)
		}
		tc.body["custom_fields"] = []any{map[string]any{"id": strconv.FormatInt(field, 10), "content": "X1"}}
		answer, err := c.UpdateObjectAt(ctx, tc.patch, tc.path, tc.body, "custom_fields")
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if !strings.Contains(string(answer.Raw), `"content":"X1"`) {
			t.Errorf("%s answered %s", tc.path, answer.Raw)
		}
		for _, q := range []ObjectQuery{{IDs: []ID{tc.id, 999999}}, {Since: start, SinceFilter: tc.sinceFilter}} {
			q.Fields, q.PageSize = tc.fields, 1000
			var got []string
			for o, err := range c.Objects(ctx, tc.list, q) {
				if err != nil {
					t.Fatalf("%s %+v: %v", tc.list, q, err)
				}
				got = append(got, fmt.Sprintf("%d %t", o.ID, strings.Contains(string(o.Raw), `"content":"X1"`)))
			}
			if want := fmt.Sprintf("[%d true]", tc.id); fmt.Sprint(got) != want {
				t.Errorf("%s %+v listed %v, want %s", tc.list, q, got, want)
			}
		}
	}
}

// TagsByID reads tags through v2 by id and gives each as v1's GET does (the raw JSON too, which
// is what the sync stores), the category's name and description filled in from one listing of
// the categories. A tag whose category that listing lacks is an unusable answer, not a tag
// without its category.
func TestTagsByIDInV1Shape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 5, Seed: 2}})
	c, ctx := e.client, context.Background()
	cat, err := c.CreateTagCategory(ctx, "Sync", "made by the client test")
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for i, in := range []TagInput{{Name: "In a category", Description: "d", CategoryID: cat.ID}, {Name: "Bare"}} {
		tag, err := c.CreateTag(ctx, in)
		if err != nil {
			t.Fatal(i, err)
		}
		ids = append(ids, tag.ID)
	}
	ids = append(ids, 1) // a generated tag, in a generated category

	before := e.wire.done.Load()
	got, err := Collect(c.TagsByID(ctx, append(slices.Clone(ids), 99999)))
	if err != nil {
		t.Fatal(err)
	}
	if calls := e.wire.done.Load() - before; len(got) != len(ids) || calls != 2 {
		t.Fatalf("%d tags in %d calls, want %d in 2 (the tags, the categories)", len(got), calls, len(ids))
	}
	for _, tag := range got {
		want, err := c.GetTag(ctx, tag.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, tag.Raw, want.Raw) || tag.Name != want.Name || tag.Description != want.Description {
			t.Errorf("tag %d through v2: %s; v1's GET: %s", tag.ID, tag.Raw, want.Raw)
		}
	}

	before = e.wire.done.Load()
	if none, err := Collect(c.TagsByID(ctx, nil)); err != nil || len(none) != 0 || e.wire.done.Load() != before {
		t.Errorf("no ids: %d tags, %v, %d calls; want nothing asked (an empty filter lists every tag)", len(none), err, e.wire.done.Load()-before)
	}
	if bare, err := Collect(c.TagsByID(ctx, ids[1:2])); err != nil || len(bare) != 1 || e.wire.done.Load()-before != 1 {
		t.Errorf("a tag without a category: %v, %v in %d calls, want it in one", bare, err, e.wire.done.Load()-before)
	}

	// A category made between the two listings: the tag cannot be given as v1 does.
	stale := standIn(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/categories") {
			fmt.Fprint(w, `{"tag_categories": [{"id": "1", "name": "Old"}]}`)
			return
		}
		fmt.Fprint(w, `{"tags": [{"id": "5", "name": "New", "category": {"id": "2"}}]}`)
	})
	if _, err := Collect(stale.TagsByID(ctx, []ID{5})); !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "category 2") {
		t.Errorf("a tag in a category Keap did not list: %v, want an unusable answer naming the category", err)
	}

	// A hostile name (a NUL, a byte that is not UTF-8) reaches the caller as Keap sent it, for
	// ingest to record what it alters: decoding it into a string would have replaced the byte.
	hostile := standIn(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/categories") {
			fmt.Fprint(w, "{\"tag_categories\": [{\"id\": \"1\", \"name\": \"Odd \xfe\"}]}")
			return
		}
		fmt.Fprint(w, "{\"tags\": [{\"id\": \"5\", \"name\": \"VIP\\u0000 \xff\", \"category\": {\"id\": \"1\"}}]}")
	})
	if got, err := Collect(hostile.TagsByID(ctx, []ID{5})); err != nil || len(got) != 1 ||
		!strings.Contains(string(got[0].Raw), "VIP\\u0000 \xff") || !strings.Contains(string(got[0].Raw), "Odd \xfe") {
		t.Errorf("a hostile tag: %d tags (%v); want one, its bytes as Keap sent them", len(got), err)
		for _, tag := range got {
			t.Errorf("got %q", tag.Raw)
		}
	}
}

// sameJSON says whether a and b are the same JSON value, however laid out.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
