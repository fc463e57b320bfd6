package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// lookBack widens the search for an earlier create against clock skew between us and Keap.
const lookBack = 5 * time.Minute

// findContact looks for the contact a create sent at `at` may have made: same names and first
// phone number, changed since then. Keap has no idempotency keys; this is the next best thing.
func findContact(ctx context.Context, api Keap, body json.RawMessage, at time.Time) (*keap.Contact, error) {
	var want keap.Contact
	if err := json.Unmarshal(body, &want); err != nil {
		return nil, fmt.Errorf("push: contact body: %w", err)
	}
	page, err := api.ListContacts(ctx, keap.ContactQuery{GivenName: want.GivenName, FamilyName: want.FamilyName,
		Since: at.Add(-lookBack), Limit: 1000})
	if err != nil {
		return nil, fmt.Errorf("push: look for an earlier create: %w", err)
	}
	var found *keap.Contact
	for i, c := range page.Items {
		if c.GivenName == want.GivenName && c.FamilyName == want.FamilyName && firstPhone(c) == firstPhone(want) &&
			(found == nil || c.ID > found.ID) {
			found = &page.Items[i]
		}
	}
	return found, nil
}

// findOrder looks for the order a create sent at `at` may have made: the contact's order with
// that title, created since then.
func findOrder(ctx context.Context, api Keap, contact keap.ID, title string, at time.Time) (*keap.Order, error) {
	page, err := api.ListOrders(ctx, keap.OrderQuery{ContactID: contact, Limit: 1000})
	if err != nil {
		return nil, fmt.Errorf("push: look for an earlier create: %w", err)
	}
	for i, o := range page.Items {
		if o.Title == title && !o.CreationDate.Time.Before(at.Add(-lookBack)) {
			return &page.Items[i], nil
		}
	}
	return nil, nil
}

// findCreatedContact looks for a contact a create sent at `at` made, from the fields it sent:
// by email, one created since then (a PUT by email that matched an older contact made nothing);
// without one, as findContact does.
func findCreatedContact(ctx context.Context, api Keap, sent map[string]any, at time.Time) (*keap.Contact, error) {
	email, _ := sent["email"].(string)
	if email == "" {
		given, _ := sent["given_name"].(string)
		family, _ := sent["family_name"].(string)
		phone, _ := sent["phone"].(string)
		body, err := json.Marshal(keap.Contact{GivenName: given, FamilyName: family,
			PhoneNumbers: []keap.PhoneNumber{{Field: "PHONE1", Number: phone}}})
		if err != nil {
			return nil, fmt.Errorf("push: contact body: %w", err)
		}
		return findContact(ctx, api, body, at)
	}
	page, err := api.ListContacts(ctx, keap.ContactQuery{Email: email, Limit: 1000})
	if err != nil {
		return nil, fmt.Errorf("push: look for an earlier create: %w", err)
	}
	var found *keap.Contact
	for i, c := range page.Items {
		if !c.DateCreated.Time.Before(at.Add(-lookBack)) && (found == nil || c.ID > found.ID) {
			found = &page.Items[i]
		}
	}
	return found, nil
}

const (
	// sqlUnsynced: the record has no sync state, so its row is gone (a row has one from its
	// insert on; with a Keap id and deletes propagated, it keeps it until the delete is pushed).
	sqlUnsynced = `
select not exists (select 1 from keapsync.sync_state where account_id = $1::uuid and object_type = $2 and local_id = $3)`
	// sqlPropagateDeletes: whether the account sends local deletes to Keap.
	sqlPropagateDeletes = `select coalesce((select propagate_deletes from keapsync.settings where account_id = $1), false)`
)

// undoCreate handles a record deleted here after its create was sent but before Keap's answer
// was recorded (a crash, a lost connection): the create is marked, and push_request has nothing
// to send because the row is gone. Keap may hold what the create made, which nothing here
// names any more (its hook may even have imported it as a new row). It is a local delete like
// any other: when the account sends deletes to Keap, what the create made is found as a marked
// create finds it, and deleted; Keap's delete hook then removes any imported copy here.
func (j *pushJob) undoCreate(ctx context.Context, at time.Time) (string, error) {
	api := j.api
	var gone, propagate bool
	if err := j.conn.QueryRow(ctx, sqlUnsynced, j.account, j.objectType, j.localID).Scan(&gone); err != nil {
		return "", fmt.Errorf("push: read sync state: %w", err)
	}
	if err := j.conn.QueryRow(ctx, sqlPropagateDeletes, j.account).Scan(&propagate); err != nil {
		return "", fmt.Errorf("push: read settings: %w", err)
	}
	var sent map[string]any
	if err := json.Unmarshal(j.sent, &sent); err != nil || !gone || !propagate {
		return OutcomeNone, j.done(ctx, nil, nil, false)
	}
	var id keap.ID
	switch j.objectType {
	case "contact":
		c, err := findCreatedContact(ctx, api, sent, at)
		if err != nil {
			return "", err
		}
		if c != nil {
			id = c.ID
		}
	case "order":
		contact, _ := sent["contact_keap_id"].(float64)
		title, _ := sent["title"].(string)
		o, err := findOrder(ctx, api, keap.ID(contact), title, at)
		if err != nil {
			return "", err
		}
		if o != nil {
			id = o.ID
		}
	}
	if id == 0 {
		return OutcomeNone, j.done(ctx, nil, nil, false)
	}
	j.p.log.Info("deleting what a create made for a record deleted here before its answer was recorded",
		"record", j.String(), "keap_id", id)
	kid := int64(id)
	if err := j.deleteInKeap(ctx, &request{Op: "delete", KeapID: &kid}); err != nil {
		return "", err
	}
	// Nothing to mark: the record has no sync state here any more.
	return OutcomeDeleted, j.done(ctx, nil, nil, false)
}

func firstPhone(c keap.Contact) string {
	if len(c.PhoneNumbers) == 0 {
		return ""
	}
	return c.PhoneNumbers[0].Number
}

// pushCreate creates a tag or an order: marked before it is sent, looked for before a marked
// create is sent again.
func (j *pushJob) pushCreate(ctx context.Context, req *request) (string, error) {
	at, marked := j.createMark()
	var raw json.RawMessage
	var err error
	switch j.objectType {
	case "tag":
		raw, err = j.createTag(ctx, req, at, marked)
	case "order":
		raw, err = j.createOrder(ctx, req, at, marked)
	}
	if err != nil {
		return "", err
	}
	var then []string
	if j.objectType == "tag" {
		then = append(then, sqlTagFollowers)
	}
	return OutcomeCreated, j.done(ctx, req.Pushed, raw, true, then...)
}

// A tag applied to contacts before it existed in Keap could not be applied there (it had no
// Keap id); now it has one, those contacts have a tag to push.
const sqlTagFollowers = `
select keapsync.enqueue_push(ct.account_id, 'contact', ct.contact_id, null) from keap.contact_tags ct where ct.tag_id = $1`

func (j *pushJob) createTag(ctx context.Context, req *request, at time.Time, marked bool) (json.RawMessage, error) {
	api := j.api
	var body struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Category    struct {
			ID keap.ID `json:"id"`
		} `json:"category"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return nil, fmt.Errorf("push: tag body: %w", err)
	}
	if marked {
		page, err := api.ListTags(ctx, keap.TagQuery{Name: body.Name, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("push: look for an earlier create: %w", err)
		}
		var found *keap.Tag
		for i, t := range page.Items {
			if t.Name == body.Name && (found == nil || t.ID > found.ID) {
				found = &page.Items[i]
			}
		}
		if found != nil {
			return found.Raw, nil
		}
	}
	if err := j.noteCreate(ctx, req.Pushed); err != nil {
		return nil, err
	}
	t, err := api.CreateTag(ctx, keap.TagInput{Name: body.Name, Description: body.Description, CategoryID: body.Category.ID})
	if err != nil {
		return nil, refused(err, req)
	}
	return t.Raw, nil
}

func (j *pushJob) createOrder(ctx context.Context, req *request, at time.Time, marked bool) (json.RawMessage, error) {
	api := j.api
	var body struct {
		ContactID  keap.ID   `json:"contact_id"`
		OrderDate  keap.Time `json:"order_date"`
		OrderTitle string    `json:"order_title"`
		OrderType  string    `json:"order_type"`
		Items      []struct {
			ProductID   keap.ID     `json:"product_id"`
			Quantity    int         `json:"quantity"`
			Price       json.Number `json:"price"`
			Description string      `json:"description"`
		} `json:"order_items"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return nil, fmt.Errorf("push: order body: %w", err)
	}
	if body.ContactID == 0 {
		// Retried, not parked: the contact's own create is likely still queued.
		return nil, errors.New("push: the order's contact is not in Keap yet")
	}
	in := keap.OrderInput{ContactID: body.ContactID, OrderDate: body.OrderDate, OrderTitle: body.OrderTitle, OrderType: body.OrderType}
	for _, it := range body.Items {
		in.OrderItems = append(in.OrderItems, keap.OrderItemInput{ProductID: it.ProductID, Quantity: it.Quantity,
			Price: it.Price.String(), Description: it.Description})
	}
	if marked {
		found, err := findOrder(ctx, api, body.ContactID, body.OrderTitle, at)
		if err != nil {
			return nil, err
		}
		if found != nil {
			return found.Raw, nil
		}
	}
	if err := j.noteCreate(ctx, req.Pushed); err != nil {
		return nil, err
	}
	o, err := api.CreateOrder(ctx, in)
	if err != nil {
		return nil, refused(err, req)
	}
	// Keap answers a create with its Order shape, which lacks order_type and source_type: applied
	// as the order, it would clear them here, and the reads that carry them later have the same
	// modification_date, so they would be skipped as duplicates. The order as Keap serves it is
	// what mark_pushed gets. Should this read fail, the marked create is found by the retry.
	full, err := api.GetOrder(ctx, o.ID)
	if err != nil {
		return nil, fmt.Errorf("push: read back order %d: %w", o.ID, err)
	}
	return full.Raw, nil
}

// createContact makes the contact in Keap without ever making two. A create is marked in the
// queue row before it is sent (for undoCreate, should the row go before the answer is recorded).
// With an email address it is PUT create-or-update by email, safe to repeat. Without one a
// marked create first looks for the contact it may have made.
func (j *pushJob) createContact(ctx context.Context, req *request) (*keap.Contact, error) {
	api := j.api
	body, err := j.withOptIn(ctx, req.Body)
	if err != nil {
		return nil, err
	}
	sending := *req
	sending.Body = body
	req = &sending
	if req.Email != nil && *req.Email != "" {
		if err := j.noteCreate(ctx, req.Pushed); err != nil {
			return nil, err
		}
		c, err := api.UpsertContact(ctx, keap.DuplicateEmail, req.Body)
		return c, refused(err, req)
	}
	if at, ok := j.createMark(); ok {
		found, err := findContact(ctx, api, req.Body, at)
		if err != nil {
			return nil, err
		}
		if found != nil {
			j.p.log.Info("adopting the contact an earlier create made", "record", j.String(), "keap_id", found.ID)
			c, err := api.UpdateContact(ctx, found.ID, req.Body, req.UpdateMask...)
			return c, refused(err, req)
		}
	}
	if err := j.noteCreate(ctx, req.Pushed); err != nil {
		return nil, err
	}
	c, err := api.CreateContact(ctx, req.Body)
	return c, refused(err, req)
}

// sqlOptInReason is the marketing consent recorded for a contact (keap.contacts.email_opt_in_reason).
const sqlOptInReason = `select email_opt_in_reason from keap.contacts where id = $1 and account_id = $2::uuid`

// withOptIn adds the recorded consent to a create body as Keap's opt_in_reason, which is what
// makes Keap mark the address marketable; with no consent recorded the body goes as it is, and
// the address stays non-marketable.
func (j *pushJob) withOptIn(ctx context.Context, body json.RawMessage) (json.RawMessage, error) {
	var reason *string
	if err := j.conn.QueryRow(ctx, sqlOptInReason, j.localID, j.account).Scan(&reason); err != nil {
		return nil, fmt.Errorf("push: read email consent: %w", err)
	}
	if reason == nil || strings.TrimSpace(*reason) == "" {
		return body, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("push: create body: %w", err)
	}
	if _, ok := top["email_addresses"]; !ok {
		return body, nil // nothing to mark marketable
	}
	top["opt_in_reason"], _ = json.Marshal(strings.TrimSpace(*reason))
	return json.Marshal(top)
}
