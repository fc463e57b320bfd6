package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// The methods below act as a person working in Keap's web app: they change data without an
// API credential (no throttle, no request log) and fire the same hook events as the API.

// CreateContact adds a contact from v1-shaped fields and returns its id.
func (s *Server) CreateContact(fields map[string]any) (int64, error) {
	body, err := normalize(fields)
	if err != nil {
		return 0, err
	}
	c, err := s.store.createContact(body)
	if err != nil {
		return 0, fmt.Errorf("create contact: %w", err)
	}
	return c.id, nil
}

// EditContact changes a contact's v1 properties (a null value clears one).
func (s *Server) EditContact(id int64, fields map[string]any) error {
	body, err := normalize(fields)
	if err != nil {
		return err
	}
	if _, err := s.store.updateContact(id, body, nil); err != nil {
		return fmt.Errorf("edit contact %d: %w", id, err)
	}
	return nil
}

// DeleteContact deletes a contact.
func (s *Server) DeleteContact(id int64) error {
	if err := s.store.deleteContact(id); err != nil {
		return fmt.Errorf("delete contact %d: %w", id, err)
	}
	return nil
}

// AddCustomField creates a contact custom field, as an admin does in Keap's settings, and
// returns its id. options are a select field's choices (Dropdown, ListBox, Radio).
func (s *Server) AddCustomField(label, fieldType string, options ...string) (int64, error) {
	var f customField
	err := s.store.write(func() ([]event, error) {
		f = s.store.addCustomField(label, fieldType, options...)
		return nil, nil
	})
	return f.ID, err
}

// AddCustomFieldTo creates a custom field of another record type (v2's record_type: COMPANY,
// TASK_NOTE_APPOINTMENT (tasks and notes), OPPORTUNITY, SUBSCRIPTION or ORDER), as an admin does
// in Keap's settings, and
// returns its id.
func (s *Server) AddCustomFieldTo(recordType, label, fieldType string, options ...string) (int64, error) {
	if !slices.Contains([]string{recordContact, recordCompany, recordTask, recordOpportunity, recordSubscription, recordOrder}, recordType) {
		return 0, fmt.Errorf("add custom field: the sandbox keeps no %q custom fields", recordType)
	}
	var f customField
	err := s.store.write(func() ([]event, error) {
		f = s.store.addCustomFieldOf(recordType, label, fieldType, options...)
		return nil, nil
	})
	return f.ID, err
}

// RenameCustomField changes a custom field's label. Contacts keep their values (they
// are keyed by the field's id) and, as in Keap, no hook fires: only the model shows it.
func (s *Server) RenameCustomField(id int64, label string) error {
	if err := s.store.write(func() ([]event, error) { return nil, s.store.renameCustomField(id, label) }); err != nil {
		return fmt.Errorf("rename custom field %d: %w", id, err)
	}
	return nil
}

// CreateTag adds a tag (emits contactGroup.add). Like Keap's app, it takes any name, including
// ones PostgreSQL cannot store (a NUL), which is what tests of hostile records need.
func (s *Server) CreateTag(name, description string) (int64, error) {
	t, err := s.store.createTag(name, description, 0)
	if err != nil {
		return 0, fmt.Errorf("create tag: %w", err)
	}
	return t["id"].(int64), nil
}

// EditTag changes a tag's description (emits contactGroup.edit).
func (s *Server) EditTag(id int64, description string) error {
	if err := s.store.editTag(id, description); err != nil {
		return fmt.Errorf("edit tag %d: %w", id, err)
	}
	return nil
}

// ApplyTag applies a tag to a contact; RemoveTag removes it.
func (s *Server) ApplyTag(contactID, tagID int64) error { return s.setTag(contactID, tagID, true) }

// RemoveTag removes a tag from a contact.
func (s *Server) RemoveTag(contactID, tagID int64) error { return s.setTag(contactID, tagID, false) }

func (s *Server) setTag(contactID, tagID int64, apply bool) error {
	res := s.store.setTags([][2]int64{{contactID, tagID}}, apply, false)
	switch r := res[fmt.Sprint(tagID)]; r {
	case resultSuccess, resultDuplicate:
		return nil
	default:
		return fmt.Errorf("tag %d on contact %d: %s", tagID, contactID, r)
	}
}

// CreateOrder enters an order from fields shaped like the body of POST /v1/orders (contact_id,
// order_title, order_type, order_items) and returns its id (emits order.add). Without an
// order_date it is dated now, as the web app's order form is.
func (s *Server) CreateOrder(fields map[string]any) (int64, error) {
	raw, err := json.Marshal(fields)
	if err != nil {
		return 0, fmt.Errorf("create order: %w", err)
	}
	var in orderInput
	if err := json.Unmarshal(raw, &in); err != nil {
		return 0, fmt.Errorf("create order: %w", err)
	}
	o, err := s.enterOrder(in)
	if err != nil {
		return 0, fmt.Errorf("create order: %w", err)
	}
	return o.id, nil
}

func (s *Server) enterOrder(in orderInput) (*order, error) {
	if in.OrderDate == "" {
		in.OrderDate = keapTime(s.clock.Now())
	}
	return s.store.createOrder(in)
}

// DeleteOrder deletes an order; like the API, it refuses one with payments (emits order.delete).
func (s *Server) DeleteOrder(id int64) error {
	if err := s.store.deleteOrder(id); err != nil {
		return fmt.Errorf("delete order %d: %w", id, err)
	}
	return nil
}

// PayOrder records a payment on an order (emits order.edit).
func (s *Server) PayOrder(orderID int64, amount float64) error {
	if _, _, err := s.store.addPayment(orderID, amount, "CASH", "sandbox", time.Time{}); err != nil {
		return fmt.Errorf("pay order %d: %w", orderID, err)
	}
	return nil
}

// SetSubscriptionCustomField sets (or, with nil content, clears) one custom field of a
// subscription, as a person does in Keap's app (emits subscription.edit).
func (s *Server) SetSubscriptionCustomField(id, fieldID int64, content any) error {
	s.store.mu.RLock()
	ok := s.store.hasCustomField(recordSubscription, fieldID)
	s.store.mu.RUnlock()
	if !ok {
		return fmt.Errorf("subscription %d: no subscription custom field %d", id, fieldID)
	}
	_, err := s.store.updateSubscription(id, func(sub *subscription) {
		next := maps.Clone(sub.custom)
		if next == nil {
			next = customValues{}
		}
		if content == nil {
			delete(next, fieldID)
		} else {
			next[fieldID] = content
		}
		sub.custom = next
	})
	if err != nil {
		return fmt.Errorf("subscription %d: %w", id, err)
	}
	return nil
}

// SetSubscriptionActive (de)activates a subscription (emits subscription.edit).
func (s *Server) SetSubscriptionActive(id int64, active bool) error {
	if _, err := s.store.updateSubscription(id, func(sub *subscription) { sub.active = active }); err != nil {
		return fmt.Errorf("subscription %d: %w", id, err)
	}
	return nil
}

// Faults returns the injected faults; SetFaults replaces them.
func (s *Server) Faults() Faults { return s.faults.get() }

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// RevokeTokens kills all OAuth tokens (token == "") or the one given; it returns how many.
func (s *Server) RevokeTokens(token string) int { return s.auth.revoke(token) }

// IssueTokens mints an OAuth token pair for the sandbox's client, as if the code flow had just
// completed, for tests that are not about OAuth.
func (s *Server) IssueTokens() Tokens {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	return s.auth.issue(s.auth.clientID)
}

// SetAutoApprove switches the authorize endpoint between consent page and instant approval.
func (s *Server) SetAutoApprove(on bool) {
	s.auth.mu.Lock()
	s.auth.autoApprove = on
	s.auth.mu.Unlock()
}

// Now is the sandbox's time; Advance moves it forward (and wakes the hook dispatcher).
func (s *Server) Now() time.Time { return s.clock.Now() }

// Advance moves the sandbox clock forward by d.
func (s *Server) Advance(d time.Duration) {
	s.clock.advance(d)
	s.queue.wake()
}

// Requests returns the request log, oldest first; ClearRequests empties it.
func (s *Server) Requests() []RequestRecord { return s.reqlog.list() }

// ClearRequests empties the request log.
func (s *Server) ClearRequests() { s.reqlog.clear() }

// Deliveries returns every hook delivery attempt, oldest first.
func (s *Server) Deliveries() []DeliveryRecord { return s.queue.history() }

// Hooks returns the hook subscriptions.
func (s *Server) Hooks() []Hook { return s.hooks.list() }

// FlushHooks makes every queued delivery due now.
func (s *Server) FlushHooks() { s.queue.flush() }

// WaitHooksIdle waits until no delivery is queued or in flight (checking every few ms).
func (s *Server) WaitHooksIdle(ctx context.Context) error {
	for !s.queue.idle() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for hook deliveries: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// normalize gives Go-built fields the shape decoded JSON has (json.Number, []any), so helper
// edits and API edits are stored alike.
func normalize(fields map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("fields: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("fields: %w", err)
	}
	return out, nil
}

// CreateCompany creates a company as a person in Keap would (emits company.add). fields take
// [V2]'s CreateCompanyRequest shape.
func (s *Server) CreateCompany(fields map[string]any) (int64, error) {
	var in companyInput
	if err := remarshal(fields, &in); err != nil {
		return 0, fmt.Errorf("create company: %w", err)
	}
	c, err := s.store.createCompany(in)
	if err != nil {
		return 0, fmt.Errorf("create company: %w", err)
	}
	return c.id, nil
}

// EditCompany changes the properties fields names (emits company.edit).
func (s *Server) EditCompany(id int64, fields map[string]any) error {
	var in companyInput
	if err := remarshal(fields, &in); err != nil {
		return err
	}
	mask := slices.Collect(maps.Keys(fields))
	if _, err := s.store.updateCompany(id, in, mask); err != nil {
		return fmt.Errorf("edit company %d: %w", id, err)
	}
	return nil
}

// DeleteCompany deletes a company (emits company.delete).
func (s *Server) DeleteCompany(id int64) error {
	if err := s.store.deleteCompany(id); err != nil {
		return fmt.Errorf("delete company %d: %w", id, err)
	}
	return nil
}

// CreateProduct adds a product to the catalogue as a person in Keap would (emits product.add).
// fields take [V2]'s CreateProductRequest shape.
func (s *Server) CreateProduct(fields map[string]any) (int64, error) {
	var in productInput
	if err := remarshal(fields, &in); err != nil {
		return 0, fmt.Errorf("create product: %w", err)
	}
	p, err := s.store.createProduct(in)
	if err != nil {
		return 0, fmt.Errorf("create product: %w", err)
	}
	return p.ID, nil
}

// EditProduct changes the properties fields names (emits product.edit).
func (s *Server) EditProduct(id int64, fields map[string]any) error {
	var in productInput
	if err := remarshal(fields, &in); err != nil {
		return err
	}
	mask := slices.Collect(maps.Keys(fields))
	if _, err := s.store.updateProduct(id, in, mask); err != nil {
		return fmt.Errorf("edit product %d: %w", id, err)
	}
	return nil
}

// DeleteProduct deletes a product (emits product.delete).
func (s *Server) DeleteProduct(id int64) error {
	if err := s.store.deleteProduct(id); err != nil {
		return fmt.Errorf("delete product %d: %w", id, err)
	}
	return nil
}

// CreateTask creates a task as a person in Keap would (emits task.add); fields take [V2]'s
// CreateTaskRequest shape (ids as strings).
func (s *Server) CreateTask(fields map[string]any) (int64, error) {
	var in taskInput
	if err := remarshal(fields, &in); err != nil {
		return 0, fmt.Errorf("create task: %w", err)
	}
	t, err := s.store.createTask(in)
	if err != nil {
		return 0, fmt.Errorf("create task: %w", err)
	}
	return t.id, nil
}

// EditTask changes the properties fields names (emits task.edit).
func (s *Server) EditTask(id int64, fields map[string]any) error {
	var in taskInput
	if err := remarshal(fields, &in); err != nil {
		return err
	}
	mask := slices.Collect(maps.Keys(fields))
	if _, err := s.store.updateTask(id, in, mask); err != nil {
		return fmt.Errorf("edit task %d: %w", id, err)
	}
	return nil
}

// DeleteTask deletes a task (emits task.delete).
func (s *Server) DeleteTask(id int64) error {
	if err := s.store.deleteTask(id); err != nil {
		return fmt.Errorf("delete task %d: %w", id, err)
	}
	return nil
}

// CreateOpportunityStage adds a pipeline stage as a person in Keap would (no hook: Keap has
// none for stages). fields take [V2]'s CreateOpportunityStageRequest shape.
func (s *Server) CreateOpportunityStage(fields map[string]any) (int64, error) {
	var in stageInput
	if err := remarshal(fields, &in); err != nil {
		return 0, fmt.Errorf("create stage: %w", err)
	}
	st, err := s.store.createStage(in)
	if err != nil {
		return 0, fmt.Errorf("create stage: %w", err)
	}
	return st.id, nil
}

// EditOpportunityStage changes the properties fields names.
func (s *Server) EditOpportunityStage(id int64, fields map[string]any) error {
	var in stageInput
	if err := remarshal(fields, &in); err != nil {
		return err
	}
	if _, err := s.store.updateStage(id, in, slices.Collect(maps.Keys(fields))); err != nil {
		return fmt.Errorf("edit stage %d: %w", id, err)
	}
	return nil
}

// DeleteOpportunityStage deletes a stage no opportunity is in.
func (s *Server) DeleteOpportunityStage(id int64) error {
	if err := s.store.deleteStage(id); err != nil {
		return fmt.Errorf("delete stage %d: %w", id, err)
	}
	return nil
}

// CreateOpportunity creates an opportunity as a person in Keap would (emits opportunity.add);
// fields take [V2]'s CreateOpportunityRequest shape (ids as strings).
func (s *Server) CreateOpportunity(fields map[string]any) (int64, error) {
	var in opportunityInput
	if err := remarshal(fields, &in); err != nil {
		return 0, fmt.Errorf("create opportunity: %w", err)
	}
	o, err := s.store.createOpportunity(in)
	if err != nil {
		return 0, fmt.Errorf("create opportunity: %w", err)
	}
	return o.id, nil
}

// EditOpportunity changes the properties fields names (emits opportunity.edit, and
// opportunity.stage_move when stage_id is among them and changes).
func (s *Server) EditOpportunity(id int64, fields map[string]any) error {
	var in opportunityInput
	if err := remarshal(fields, &in); err != nil {
		return err
	}
	if _, err := s.store.updateOpportunity(id, in, slices.Collect(maps.Keys(fields))); err != nil {
		return fmt.Errorf("edit opportunity %d: %w", id, err)
	}
	return nil
}

// MoveOpportunity drags an opportunity to another stage on the pipeline board (emits
// opportunity.stage_move only).
func (s *Server) MoveOpportunity(id, stageID int64) error {
	return s.EditOpportunity(id, map[string]any{"stage_id": strconv.FormatInt(stageID, 10)})
}

// DeleteOpportunity deletes an opportunity (emits opportunity.delete).
func (s *Server) DeleteOpportunity(id int64) error {
	if err := s.store.deleteOpportunity(id); err != nil {
		return fmt.Errorf("delete opportunity %d: %w", id, err)
	}
	return nil
}

// CreateNote writes a note on a contact as a person in Keap would (emits note.add); fields take
// [V1]'s RequestNote shape (ids as numbers).
func (s *Server) CreateNote(fields map[string]any) (int64, error) {
	var in noteInput
	if err := remarshal(fields, &in); err != nil {
		return 0, fmt.Errorf("create note: %w", err)
	}
	n, err := s.store.createNote(in)
	if err != nil {
		return 0, fmt.Errorf("create note: %w", err)
	}
	return n.id, nil
}

// EditNote changes the properties fields names, a nil clearing one (emits note.edit).
func (s *Server) EditNote(id int64, fields map[string]any) error {
	var in noteInput
	if err := remarshal(fields, &in); err != nil {
		return err
	}
	if _, err := s.store.updateNote(id, in, nil); err != nil {
		return fmt.Errorf("edit note %d: %w", id, err)
	}
	return nil
}

// DeleteNote deletes a note (emits note.delete).
func (s *Server) DeleteNote(id int64) error {
	if err := s.store.deleteNote(id); err != nil {
		return fmt.Errorf("delete note %d: %w", id, err)
	}
	return nil
}

// remarshal turns helper arguments into an API input, as the API would decode them.
func remarshal(fields map[string]any, into any) error {
	b, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}
