package sandbox

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Notes and orders are Keap v1 records the sandbox also serves through [V2], where alone they
// carry custom fields: a listing that reads them by id or update time, and the update of their
// custom fields. keapsync reads and writes everything else of them through v1.

// v2 renders [V2]'s Note: ids are strings, update_time is its clock. Keap documents neither
// that its times are v1's to the millisecond nor that assigned_to_user is v1's user_id (FACTS
// §7): the profile's NoteTimesInSeconds and NoteUserUnassigned say otherwise.
func (n *note) v2(p Profile) map[string]any {
	at := keapTime
	if p.NoteTimesInSeconds {
		at = func(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }
	}
	out := map[string]any{
		"id": strconv.FormatInt(n.id, 10), "contact_id": strconv.FormatInt(n.contactID, 10),
		"create_time": at(n.created), "update_time": at(n.updated), "custom_fields": n.custom.v2(),
	}
	for k, v := range map[string]string{"title": n.title, "text": n.body, "type": n.kind} {
		if v != "" {
			out[k] = v
		}
	}
	if n.userID != 0 {
		out["last_updated_by_user_id"] = strconv.FormatInt(n.userID, 10)
		if !p.NoteUserUnassigned {
			out["assigned_to_user"] = map[string]any{"id": strconv.FormatInt(n.userID, 10)}
		}
	}
	return out
}

// renderOrderV2 builds [V2]'s OrderV2, as far as the sandbox keeps an order: money as
// CurrencyValue (cents), enums upper-case, ids as strings.
func (s *store) renderOrderV2(o *order) map[string]any {
	money := func(f float64) map[string]any {
		return map[string]any{"amount": int64(math.Round(f * 100)), "currency_code": "USD", "formatted_amount": fmt.Sprintf("$%.2f", f)}
	}
	out := map[string]any{
		"id": strconv.FormatInt(o.id, 10), "title": o.title, "status": o.status(), "source_type": "API",
		"order_type": strings.ToUpper(o.orderType), "total": money(o.total()), "total_paid": money(o.paid()),
		"total_due": money(o.total() - o.paid()), "refund_total": money(0),
		"order_time": keapTime(o.orderDate), "creation_time": keapTime(o.created), "modification_time": keapTime(o.updated),
		"custom_fields": o.custom.v2(),
	}
	if c := s.contacts[o.contactID]; c != nil {
		out["contact"] = map[string]any{"id": strconv.FormatInt(c.id, 10), "email": first(c.emails()),
			"given_name": c.str("given_name"), "family_name": c.str("family_name")}
	}
	return out
}

// v2Filter is a notes or orders listing's filter: ids==1,2,3, the collection's update-time
// bounds, contact_id==N, joined by ';'.
type v2Filter struct {
	ids          map[int64]bool
	since, until time.Time
	contact      int64
}

func parseV2Filter(f, sinceName, untilName string) (v2Filter, error) {
	var out v2Filter
	if f == "" {
		return out, nil
	}
	for _, clause := range strings.Split(f, ";") {
		name, val, ok := strings.Cut(clause, "==")
		var err error
		switch {
		case !ok:
			err = fmt.Errorf("no ==")
		case name == "ids":
			out.ids, err = idSet(val)
		case name == sinceName:
			out.since, err = parseKeapTime(val)
		case name == untilName:
			out.until, err = parseKeapTime(val)
		case name == "contact_id":
			out.contact, err = strconv.ParseInt(val, 10, 64)
		default:
			err = fmt.Errorf("unknown")
		}
		if err != nil {
			return out, v2Error(http.StatusBadRequest, "Invalid filter: "+clause)
		}
	}
	return out, nil
}

// idSet reads a filter's comma-separated ids (ids==1,2,3, product_ids==1,2,3).
func idSet(list string) (map[int64]bool, error) {
	ids := map[int64]bool{}
	for _, v := range strings.Split(list, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, nil
}

func (f v2Filter) keep(id, contact int64, updated time.Time) bool {
	return (f.ids == nil || f.ids[id]) && (f.contact == 0 || contact == f.contact) &&
		(f.since.IsZero() || !updated.Before(f.since)) && (f.until.IsZero() || updated.Before(f.until))
}

// listedV2 is one record as a notes or orders listing filters and renders it.
type listedV2 struct {
	contact int64
	updated time.Time
	render  func() map[string]any
}

// listV2 serves a notes or orders listing: the filter (ids, the collection's update-time
// bounds under its names, contact_id), in id order, page_size/page_token paging.
func (a *restAPI) listV2(w http.ResponseWriter, r *http.Request, key, sinceName, untilName string,
	ids func() []int64, record func(id int64) listedV2) error {
	f, err := parseV2Filter(r.URL.Query().Get("filter"), sinceName, untilName)
	if err != nil {
		return err
	}
	size, offset, err := v2Page(r.URL.Query())
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	var all []listedV2
	for _, id := range ids() {
		if rec := record(id); f.keep(id, rec.contact, rec.updated) {
			all = append(all, rec)
		}
	}
	writeV2Page(w, key, all, size, offset, func(rec listedV2) map[string]any { return rec.render() })
	return nil
}

// listNotesV2 serves GET /v2/notes (listAllNotes): filter ids, since_time/until_time (update
// time), contact_id; custom_fields only when fields asks for them.
func (a *restAPI) listNotesV2(w http.ResponseWriter, r *http.Request) error {
	p := a.store.profile.get() // one listing, one profile
	return a.listV2(w, r, "notes", "since_time", "until_time", func() []int64 { return a.store.noteIDs },
		func(id int64) listedV2 {
			n := a.store.notes[id]
			return listedV2{n.contactID, n.updated, func() map[string]any { return askedOnly(r, n.v2(p)) }}
		})
}

// listOrdersV2 serves GET /v2/orders (listOrders): filter ids, modified_since_time /
// modified_until_time, contact_id. OrderV2 carries its custom_fields unasked (the listing takes
// no fields).
func (a *restAPI) listOrdersV2(w http.ResponseWriter, r *http.Request) error {
	return a.listV2(w, r, "orders", "modified_since_time", "modified_until_time", func() []int64 { return a.store.orderIDs },
		func(id int64) listedV2 {
			o := a.store.orders[id]
			return listedV2{o.contactID, o.updated, func() map[string]any { return a.store.renderOrderV2(o) }}
		})
}

// customFieldsPatch is the part of [V2]'s UpdateNoteRequest / UpdateOrderRequest the sandbox
// takes: the custom fields (the rest of a note or order is written through v1 here).
type customFieldsPatch struct {
	CustomFields []customFieldInput `json:"custom_fields"`
}

// patchCustomFields checks the update_mask names custom_fields and nothing the sandbox does not
// keep, and reads the body.
func patchCustomFields(r *http.Request) (customFieldsPatch, error) {
	var in customFieldsPatch
	for _, m := range r.URL.Query()["update_mask"] {
		for _, p := range strings.Split(m, ",") {
			if p != "custom_fields" {
				return in, v2Error(http.StatusBadRequest, "The sandbox updates only custom_fields here: "+p)
			}
		}
	}
	return in, decodeBody(r, &in)
}

// patchNoteV2 serves PATCH /v2/contacts/{contact_id}/notes/{id} (updateNote) for custom_fields:
// the list replaces the note's values, as v2 documents.
func (a *restAPI) patchNoteV2(w http.ResponseWriter, r *http.Request) error {
	contact, err := pathID(r, "contact_id")
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	in, err := patchCustomFields(r)
	if err != nil {
		return err
	}
	n, err := a.store.setNoteCustom(id, contact, func(cv *customValues) error {
		return a.store.setCustomValues(recordTask, cv, in.CustomFields, true)
	})
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	writeJSON(w, http.StatusOK, n.v2(a.store.profile.get()))
	return nil
}

// patchOrderV2 serves PATCH /v2/orders/{id} (updateOrder) for custom_fields.
func (a *restAPI) patchOrderV2(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	in, err := patchCustomFields(r)
	if err != nil {
		return err
	}
	o, err := a.store.setOrderCustom(id, func(cv *customValues) error {
		return a.store.setCustomValues(recordOrder, cv, in.CustomFields, true)
	})
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	writeJSON(w, http.StatusOK, a.store.renderOrderV2(o))
	return nil
}

// setNoteCustom changes a note's custom values (contact 0: whichever contact it is on); like
// any change of the note it stamps it and emits note.edit.
func (s *store) setNoteCustom(id, contact int64, set func(*customValues) error) (*note, error) {
	var out *note
	err := s.write(func() ([]event, error) {
		n := s.notes[id]
		if n == nil || (contact != 0 && n.contactID != contact) {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Note with ID %d not found", id))
		}
		if err := s.changeCustom(&n.custom, &n.updated, set); err != nil {
			return nil, err
		}
		out = n
		return []event{noteEvent("note.edit", n)}, nil
	})
	return out, err
}

// setOrderCustom changes an order's custom values; it stamps the order and emits order.edit.
func (s *store) setOrderCustom(id int64, set func(*customValues) error) (*order, error) {
	var out *order
	err := s.write(func() ([]event, error) {
		o := s.orders[id]
		if o == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Order with ID %d not found", id))
		}
		if err := s.changeCustom(&o.custom, &o.updated, set); err != nil {
			return nil, err
		}
		out = o
		return []event{orderEvent("order.edit", o, o.updated)}, nil
	})
	return out, err
}

// changeCustom applies set to a copy of a record's custom values and, if it succeeds, puts the
// copy in place and stamps the record. The caller holds the write lock.
func (s *store) changeCustom(custom *customValues, updated *time.Time, set func(*customValues) error) error {
	cv := maps.Clone(*custom)
	if err := set(&cv); err != nil {
		return err
	}
	*custom, *updated = cv, s.stamp.next()
	return nil
}

// oneCustomValue sets (nil content: clears) one field of a record type's values.
func (s *store) oneCustomValue(recordType string, fieldID int64, content any) func(*customValues) error {
	return func(cv *customValues) error {
		if !s.hasCustomField(recordType, fieldID) {
			return fmt.Errorf("no %s custom field %d", recordType, fieldID)
		}
		if *cv == nil {
			*cv = customValues{}
		}
		if content == nil {
			delete(*cv, fieldID)
		} else {
			(*cv)[fieldID] = content
		}
		return nil
	}
}

// SetNoteCustomField sets (or, with nil content, clears) one custom field of a note, as a person
// does in Keap's app (emits note.edit). Notes share the tasks' fields (TASK_NOTE_APPOINTMENT).
func (s *Server) SetNoteCustomField(id, fieldID int64, content any) error {
	if _, err := s.store.setNoteCustom(id, 0, s.store.oneCustomValue(recordTask, fieldID, content)); err != nil {
		return fmt.Errorf("note %d: %w", id, err)
	}
	return nil
}

// SetOrderCustomField sets (or, with nil content, clears) one custom field of an order, as a
// person does in Keap's app (emits order.edit).
func (s *Server) SetOrderCustomField(id, fieldID int64, content any) error {
	if _, err := s.store.setOrderCustom(id, s.store.oneCustomValue(recordOrder, fieldID, content)); err != nil {
		return fmt.Errorf("order %d: %w", id, err)
	}
	return nil
}
