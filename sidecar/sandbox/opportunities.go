package sandbox

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// stage is a stage of the opportunity pipeline, served through [V2]. Keap sends no hook about
// stages.
type stage struct {
	id                             int64
	name                           string
	order, probability, targetDays int
	created, updated               time.Time
}

// v2 renders [V2]'s RestOpportunityStage: the id is a string; updated_time is its clock.
func (st *stage) v2() map[string]any {
	return map[string]any{
		"id": strconv.FormatInt(st.id, 10), "name": st.name, "order": st.order, "probability": st.probability,
		"target_number_days": st.targetDays, "created_time": keapTime(st.created), "updated_time": keapTime(st.updated),
		"checklist_items": []any{},
	}
}

// stageInput is [V2]'s CreateOpportunityStageRequest / UpdateOpportunityStageRequest, as far as
// the sandbox keeps it (no checklist items).
type stageInput struct {
	Name        *string `json:"name"`
	Order       *int    `json:"order"`
	Probability *int    `json:"probability"`
	TargetDays  *int    `json:"target_number_days"`
}

func (in stageInput) apply(st *stage, mask []string) error {
	set := maskedSetter(mask)
	if set("name", in.Name != nil) {
		st.name = deref(in.Name)
	}
	if set("order", in.Order != nil) {
		st.order = derefInt(in.Order)
	}
	if set("probability", in.Probability != nil) {
		if p := derefInt(in.Probability); p < 0 || p > 100 {
			return v2Error(http.StatusBadRequest, "probability must be an integer between 0 and 100")
		}
		st.probability = derefInt(in.Probability)
	}
	if set("target_number_days", in.TargetDays != nil) {
		if derefInt(in.TargetDays) < 0 {
			return v2Error(http.StatusBadRequest, "target_number_days must be >= 0")
		}
		st.targetDays = derefInt(in.TargetDays)
	}
	return nil
}

func (s *store) createStage(in stageInput) (*stage, error) {
	var out *stage
	err := s.write(func() ([]event, error) {
		if deref(in.Name) == "" || in.Order == nil || in.Probability == nil || in.TargetDays == nil {
			return nil, v2Error(http.StatusBadRequest, "name, order, probability and target_number_days are required")
		}
		st := &stage{}
		if err := in.apply(st, nil); err != nil {
			return nil, err
		}
		st.id = s.nextID("stage")
		st.created = s.stamp.next()
		st.updated = st.created
		addRecord(&s.stages, &s.stageIDs, st.id, st)
		out = st
		return nil, nil
	})
	return out, err
}

func (s *store) updateStage(id int64, in stageInput, mask []string) (*stage, error) {
	var out *stage
	err := s.write(func() ([]event, error) {
		st := s.stages[id]
		if st == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Stage with ID %d not found", id))
		}
		next := *st
		if err := in.apply(&next, mask); err != nil {
			return nil, err
		}
		*st = next
		st.updated = s.stamp.next()
		out = st
		return nil, nil
	})
	return out, err
}

// deleteStage refuses a stage that opportunities are in, as Keap does not leave them stageless.
func (s *store) deleteStage(id int64) error {
	return s.write(func() ([]event, error) {
		if s.stages[id] == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Stage with ID %d not found", id))
		}
		for _, o := range s.opps {
			if o.stageID == id {
				return nil, v2Error(http.StatusBadRequest, fmt.Sprintf("Stage %d has opportunities", id))
			}
		}
		delete(s.stages, id)
		s.stageIDs = removeID(s.stageIDs, id)
		return nil, nil
	})
}

// opportunity is a Keap opportunity (a deal with a contact, in a pipeline stage), served through
// [V2]. last_updated_time is its clock.
type opportunity struct {
	id, contactID, stageID  int64
	title, userID           string
	notes, nextActionNotes  string
	nextAction, closeAt     time.Time
	forecast                bool
	revenueLow, revenueHigh float64
	created, updated        time.Time
	custom                  customValues
}

// v2 renders [V2]'s RestV2Opportunity (ids as strings); the stage carries its name and details
// as Keap embeds them. Called under the store's lock.
func (o *opportunity) v2(s *store) map[string]any {
	out := map[string]any{
		"id": strconv.FormatInt(o.id, 10), "opportunity_title": o.title,
		"contact":             map[string]any{"id": strconv.FormatInt(o.contactID, 10)},
		"stage":               map[string]any{"id": strconv.FormatInt(o.stageID, 10)},
		"include_in_forecast": o.forecast, "projected_revenue_low": o.revenueLow, "projected_revenue_high": o.revenueHigh,
		"created_time": keapTime(o.created), "last_updated_time": keapTime(o.updated),
		"custom_fields": o.custom.v2(),
	}
	if st := s.stages[o.stageID]; st != nil {
		out["stage"] = map[string]any{"id": strconv.FormatInt(st.id, 10), "name": st.name,
			"details": map[string]any{"probability": st.probability, "stage_order": st.order, "target_num_days": st.targetDays}}
	}
	if c := s.contacts[o.contactID]; c != nil {
		contact := out["contact"].(map[string]any)
		for from, to := range map[string]string{"given_name": "first_name", "family_name": "last_name"} {
			if v, ok := c.f[from].(string); ok && v != "" {
				contact[to] = v
			}
		}
	}
	for k, v := range map[string]string{"opportunity_notes": o.notes, "next_action_notes": o.nextActionNotes} {
		if v != "" {
			out[k] = v
		}
	}
	if o.userID != "" {
		out["user"] = map[string]any{"id": o.userID}
	}
	if !o.nextAction.IsZero() {
		out["next_action_time"] = keapTime(o.nextAction)
	}
	if !o.closeAt.IsZero() {
		out["estimated_close_time"] = keapTime(o.closeAt)
	}
	return out
}

// opportunityInput is [V2]'s CreateOpportunityRequest / UpdateOpportunityRequestV2, as far as the
// sandbox keeps it.
type opportunityInput struct {
	Title           *string  `json:"opportunity_title"`
	ContactID       *string  `json:"contact_id"`
	StageID         *string  `json:"stage_id"`
	UserID          *string  `json:"user_id"`
	Notes           *string  `json:"opportunity_notes"`
	NextActionNotes *string  `json:"next_action_notes"`
	NextActionTime  *string  `json:"next_action_time"`
	EstimatedClose  *string  `json:"estimated_close_time"`
	Forecast        *bool    `json:"include_in_forecast"`
	RevenueLow      *float64 `json:"projected_revenue_low"`
	RevenueHigh     *float64 `json:"projected_revenue_high"`
	// CustomFields replace the opportunity's values (see setCustomValues).
	CustomFields []customFieldInput `json:"custom_fields"`
}

func (in opportunityInput) apply(s *store, o *opportunity, mask []string) error {
	set := maskedSetter(mask)
	if err := s.setCustomValues(recordOpportunity, &o.custom, in.CustomFields, set("custom_fields", in.CustomFields != nil)); err != nil {
		return err
	}
	if set("opportunity_title", in.Title != nil) {
		o.title = deref(in.Title)
	}
	if set("user_id", in.UserID != nil) {
		o.userID = deref(in.UserID)
	}
	if set("opportunity_notes", in.Notes != nil) {
		o.notes = deref(in.Notes)
	}
	if set("next_action_notes", in.NextActionNotes != nil) {
		o.nextActionNotes = deref(in.NextActionNotes)
	}
	if set("include_in_forecast", in.Forecast != nil) {
		o.forecast = in.Forecast != nil && *in.Forecast
	}
	if set("projected_revenue_low", in.RevenueLow != nil) {
		o.revenueLow = derefFloat(in.RevenueLow)
	}
	if set("projected_revenue_high", in.RevenueHigh != nil) {
		o.revenueHigh = derefFloat(in.RevenueHigh)
	}
	for _, t := range []struct {
		prop string
		in   *string
		out  *time.Time
	}{{"next_action_time", in.NextActionTime, &o.nextAction}, {"estimated_close_time", in.EstimatedClose, &o.closeAt}} {
		if !set(t.prop, t.in != nil) {
			continue
		}
		*t.out = time.Time{}
		if v := deref(t.in); v != "" {
			d, err := parseKeapTime(v)
			if err != nil {
				return v2Error(http.StatusBadRequest, "Invalid "+t.prop+": "+v)
			}
			*t.out = d
		}
	}
	// An opportunity always has a contact and a stage: they can be changed, not cleared.
	if set("contact_id", in.ContactID != nil) {
		id, err := strconv.ParseInt(deref(in.ContactID), 10, 64)
		if err != nil || s.contacts[id] == nil {
			return v2Error(http.StatusBadRequest, "Contact not found: "+deref(in.ContactID))
		}
		o.contactID = id
	}
	if set("stage_id", in.StageID != nil) {
		id, err := strconv.ParseInt(deref(in.StageID), 10, 64)
		if err != nil || s.stages[id] == nil {
			return v2Error(http.StatusBadRequest, "Stage not found: "+deref(in.StageID))
		}
		o.stageID = id
	}
	return nil
}

func opportunityEvent(key string, o *opportunity) event {
	return event{key: key, objectType: "opportunity", id: o.id, apiPath: fmt.Sprintf("/v2/opportunities/%d", o.id), at: o.updated}
}

func (s *store) createOpportunity(in opportunityInput) (*opportunity, error) {
	var out *opportunity
	err := s.write(func() ([]event, error) {
		if deref(in.Title) == "" || in.ContactID == nil || in.StageID == nil {
			return nil, v2Error(http.StatusBadRequest, "opportunity_title, contact_id and stage_id are required")
		}
		o := &opportunity{}
		if err := in.apply(s, o, nil); err != nil {
			return nil, err
		}
		o.id = s.nextID("opportunity")
		o.created = s.stamp.next()
		o.updated = o.created
		addRecord(&s.opps, &s.oppIDs, o.id, o)
		out = o
		return []event{opportunityEvent("opportunity.add", o)}, nil
	})
	return out, err
}

// updateOpportunity emits opportunity.stage_move when the stage changed and opportunity.edit
// when anything else did.
func (s *store) updateOpportunity(id int64, in opportunityInput, mask []string) (*opportunity, error) {
	var out *opportunity
	err := s.write(func() ([]event, error) {
		o := s.opps[id]
		if o == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Opportunity with ID %d not found", id))
		}
		next := *o
		if err := in.apply(s, &next, mask); err != nil {
			return nil, err
		}
		moved := next.stageID != o.stageID
		same := next
		same.stageID = o.stageID
		edited := !reflect.DeepEqual(same, *o)
		*o = next
		o.updated = s.stamp.next()
		out = o
		var evs []event
		if moved {
			evs = append(evs, opportunityEvent("opportunity.stage_move", o))
		}
		if edited || !moved {
			evs = append(evs, opportunityEvent("opportunity.edit", o))
		}
		return evs, nil
	})
	return out, err
}

func (s *store) deleteOpportunity(id int64) error {
	return s.write(func() ([]event, error) {
		o := s.opps[id]
		if o == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Opportunity with ID %d not found", id))
		}
		delete(s.opps, id)
		s.oppIDs = removeID(s.oppIDs, id)
		o.updated = s.stamp.next()
		return []event{opportunityEvent("opportunity.delete", o)}, nil
	})
}

// listOpportunitiesV2 serves page_size/page_token paging, filter=stage_id==N;user_id==N;contact_id==N
// and order_by=created_time|update_time|opportunity_title [asc|desc] (else by id). Keap cannot
// filter opportunities by update time.
func (a *restAPI) listOpportunitiesV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	want := map[string]string{}
	if f := q.Get("filter"); f != "" {
		for _, clause := range strings.Split(f, ";") {
			name, val, ok := strings.Cut(clause, "==")
			if !ok || (name != "stage_id" && name != "user_id" && name != "contact_id") {
				return badRequest("Invalid filter: " + clause)
			}
			want[name] = val
		}
	}
	field, dir, _ := strings.Cut(q.Get("order_by"), " ")
	if !slices.Contains([]string{"", "created_time", "update_time", "opportunity_title", "next_action_time", "contact_name"}, field) {
		return badRequest("Invalid order_by: " + q.Get("order_by"))
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	var all []*opportunity
	for _, id := range a.store.oppIDs {
		o := a.store.opps[id]
		if v, ok := want["stage_id"]; ok && v != strconv.FormatInt(o.stageID, 10) {
			continue
		}
		if v, ok := want["contact_id"]; ok && v != strconv.FormatInt(o.contactID, 10) {
			continue
		}
		if v, ok := want["user_id"]; ok && v != o.userID {
			continue
		}
		all = append(all, o)
	}
	field, desc := a.store.listOrder(field, dir, "update_time")
	sort.SliceStable(all, func(i, j int) bool {
		x, y := all[i], all[j]
		switch {
		case field == "created_time" && !x.created.Equal(y.created):
			return x.created.Before(y.created) != desc
		case field == "update_time" && !x.updated.Equal(y.updated):
			return x.updated.Before(y.updated) != desc
		case field == "opportunity_title" && x.title != y.title:
			return (x.title < y.title) != desc
		}
		return (x.id < y.id) != desc
	})
	writeV2Page(w, "opportunities", all, size, offset, func(o *opportunity) map[string]any { return askedOnly(r, o.v2(a.store)) })
	return nil
}

func (a *restAPI) getOpportunityV2(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	o := a.store.opps[id]
	if o == nil {
		return v2Error(http.StatusNotFound, fmt.Sprintf("Opportunity with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, askedOnly(r, o.v2(a.store)))
	return nil
}

// oppRecord renders an opportunity for the shared v2 write handlers, which call v2() under the
// store's read lock.
type oppRecord struct {
	o *opportunity
	s *store
}

func (r oppRecord) v2() map[string]any { return r.o.v2(r.s) }

func (a *restAPI) createOpportunityV2(w http.ResponseWriter, r *http.Request) error {
	return v2Create(a, w, r, func(in opportunityInput) (oppRecord, error) {
		o, err := a.store.createOpportunity(in)
		return oppRecord{o, a.store}, err
	})
}

func (a *restAPI) patchOpportunityV2(w http.ResponseWriter, r *http.Request) error {
	return v2Patch(a, w, r, func(id int64, in opportunityInput, mask []string) (oppRecord, error) {
		o, err := a.store.updateOpportunity(id, in, mask)
		return oppRecord{o, a.store}, err
	})
}

func (a *restAPI) deleteOpportunityV2(w http.ResponseWriter, r *http.Request) error {
	return v2Delete(w, r, a.store.deleteOpportunity)
}

// listStagesV2 serves page_size/page_token paging and order_by=stage_order [asc|desc] (else by id).
func (a *restAPI) listStagesV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	if f := q.Get("filter"); f != "" {
		return badRequest("Invalid filter: " + f)
	}
	field, dir, _ := strings.Cut(q.Get("order_by"), " ")
	if field != "" && field != "stage_order" {
		return badRequest("Invalid order_by: " + q.Get("order_by"))
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	all := make([]*stage, 0, len(a.store.stageIDs))
	for _, id := range a.store.stageIDs {
		all = append(all, a.store.stages[id])
	}
	desc := strings.EqualFold(dir, "desc")
	sort.SliceStable(all, func(i, j int) bool {
		if field == "stage_order" && all[i].order != all[j].order {
			return (all[i].order < all[j].order) != desc
		}
		return (all[i].id < all[j].id) != desc
	})
	writeV2Page(w, "stages", all, size, offset, (*stage).v2)
	return nil
}

func (a *restAPI) getStageV2(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	st := a.store.stages[id]
	if st == nil {
		return v2Error(http.StatusNotFound, fmt.Sprintf("Stage with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, st.v2())
	return nil
}

func (a *restAPI) createStageV2(w http.ResponseWriter, r *http.Request) error {
	return v2Create(a, w, r, a.store.createStage)
}

func (a *restAPI) patchStageV2(w http.ResponseWriter, r *http.Request) error {
	return v2Patch(a, w, r, a.store.updateStage)
}

func (a *restAPI) deleteStageV2(w http.ResponseWriter, r *http.Request) error {
	return v2Delete(w, r, a.store.deleteStage)
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func derefFloat(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
