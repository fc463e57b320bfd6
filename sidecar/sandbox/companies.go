package sandbox

import (
	"cmp"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// company is a Keap company, served through [V2] (v1's has no timestamps and cannot be deleted).
type company struct {
	id                                                  int64
	name, email, phone, website, notes                  string
	line1, line2, locality, region, postalCode, country string
	created, updated                                    time.Time
	custom                                              customValues
}

// v2 renders [V2]'s Company: the id is a string there.
func (c *company) v2() map[string]any {
	out := map[string]any{
		"id": strconv.FormatInt(c.id, 10), "company_name": c.name,
		"create_time": keapTime(c.created), "update_time": keapTime(c.updated),
		"custom_fields": c.custom.v2(),
	}
	if c.email != "" {
		out["email_address"] = map[string]any{"email": c.email, "field": "EMAIL1"}
	}
	if c.phone != "" {
		out["phone_number"] = map[string]any{"number": c.phone, "field": "PHONE1"}
	}
	if c.website != "" {
		out["website"] = c.website
	}
	if c.notes != "" {
		out["notes"] = c.notes
	}
	if c.line1+c.line2+c.locality+c.region+c.postalCode+c.country != "" {
		out["address"] = map[string]any{"line1": c.line1, "line2": c.line2, "locality": c.locality,
			"region": c.region, "postal_code": c.postalCode, "country_code": c.country, "field": "OTHER"}
	}
	return out
}

// companyInput is [V2]'s CreateCompanyRequest / UpdateCompanyRequest, as far as the sandbox keeps it.
type companyInput struct {
	CompanyName  *string `json:"company_name"`
	Website      *string `json:"website"`
	Notes        *string `json:"notes"`
	EmailAddress *struct {
		Email string `json:"email"`
	} `json:"email_address"`
	PhoneNumber *struct {
		Number string `json:"number"`
	} `json:"phone_number"`
	Address *struct {
		Line1       string `json:"line1"`
		Line2       string `json:"line2"`
		Locality    string `json:"locality"`
		Region      string `json:"region"`
		PostalCode  string `json:"postal_code"`
		ZipCode     string `json:"zip_code"`
		CountryCode string `json:"country_code"`
	} `json:"address"`
	// CustomFields replace the company's values (see setCustomValues).
	CustomFields []customFieldInput `json:"custom_fields"`
}

// apply sets what the input names; with a mask, only the masked properties (absent ones clear).
func (in companyInput) apply(c *company, mask []string) {
	set := maskedSetter(mask)
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if set("company_name", in.CompanyName != nil) {
		c.name = str(in.CompanyName)
	}
	if set("website", in.Website != nil) {
		c.website = str(in.Website)
	}
	if set("notes", in.Notes != nil) {
		c.notes = str(in.Notes)
	}
	if set("email_address", in.EmailAddress != nil) {
		c.email = ""
		if in.EmailAddress != nil {
			c.email = in.EmailAddress.Email
		}
	}
	if set("phone_number", in.PhoneNumber != nil) {
		c.phone = ""
		if in.PhoneNumber != nil {
			c.phone = in.PhoneNumber.Number
		}
	}
	if set("address", in.Address != nil) {
		c.line1, c.line2, c.locality, c.region, c.postalCode, c.country = "", "", "", "", "", ""
		if a := in.Address; a != nil {
			c.line1, c.line2, c.locality, c.region, c.country = a.Line1, a.Line2, a.Locality, a.Region, a.CountryCode
			c.postalCode = cmp.Or(a.PostalCode, a.ZipCode)
		}
	}
}

func companyEvent(key string, c *company) event {
	return event{key: key, objectType: "company", id: c.id, apiPath: fmt.Sprintf("/v2/companies/%d", c.id), at: c.updated}
}

func (s *store) createCompany(in companyInput) (*company, error) {
	var out *company
	err := s.write(func() ([]event, error) {
		if in.CompanyName == nil || strings.TrimSpace(*in.CompanyName) == "" {
			return nil, v2Error(http.StatusBadRequest, "company_name is required")
		}
		now := s.stamp.next()
		c := &company{created: now, updated: now}
		if err := s.setCustomValues(recordCompany, &c.custom, in.CustomFields, in.CustomFields != nil); err != nil {
			return nil, err
		}
		c.id = s.nextID("company")
		in.apply(c, nil)
		addRecord(&s.companies, &s.companyIDs, c.id, c)
		out = c
		return []event{companyEvent("company.add", c)}, nil
	})
	return out, err
}

func (s *store) updateCompany(id int64, in companyInput, mask []string) (*company, error) {
	var out *company
	err := s.write(func() ([]event, error) {
		c := s.companies[id]
		if c == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Company with ID %d not found", id))
		}
		if err := s.setCustomValues(recordCompany, &c.custom, in.CustomFields, maskedSetter(mask)("custom_fields", in.CustomFields != nil)); err != nil {
			return nil, err
		}
		in.apply(c, mask)
		c.updated = s.stamp.next()
		out = c
		return []event{companyEvent("company.edit", c)}, nil
	})
	return out, err
}

func (s *store) deleteCompany(id int64) error {
	return s.write(func() ([]event, error) {
		c := s.companies[id]
		if c == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Company with ID %d not found", id))
		}
		delete(s.companies, id)
		s.companyIDs = removeID(s.companyIDs, id)
		c.updated = s.stamp.next()
		return []event{companyEvent("company.delete", c)}, nil
	})
}

// listCompaniesV2 serves page_size/page_token paging, filter=since_time==T;until_time==T (by
// update_time, inclusive) and order_by=id|create_time [asc|desc].
func (a *restAPI) listCompaniesV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	var since, until time.Time
	if f := q.Get("filter"); f != "" {
		for _, clause := range strings.Split(f, ";") {
			name, val, ok := strings.Cut(clause, "==")
			t, terr := parseKeapTime(val)
			switch {
			case !ok || terr != nil:
				return badRequest("Invalid filter: " + clause)
			case name == "since_time":
				since = t
			case name == "until_time":
				until = t
			default:
				return badRequest("Invalid filter: " + clause)
			}
		}
	}
	field, dir, _ := strings.Cut(q.Get("order_by"), " ")
	if field != "" && field != "id" && field != "create_time" {
		return badRequest("Invalid order_by: " + q.Get("order_by"))
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	var all []*company
	for _, id := range a.store.companyIDs {
		c := a.store.companies[id]
		if (since.IsZero() || !c.updated.Before(since)) && (until.IsZero() || !c.updated.After(until)) {
			all = append(all, c)
		}
	}
	desc := strings.EqualFold(dir, "desc")
	sort.SliceStable(all, func(i, j int) bool {
		x, y := all[i], all[j]
		if field == "create_time" && !x.created.Equal(y.created) {
			return x.created.Before(y.created) != desc
		}
		return (x.id < y.id) != desc
	})
	writeV2Page(w, "companies", all, size, offset, func(c *company) map[string]any { return askedOnly(r, c.v2()) })
	return nil
}

func (a *restAPI) getCompanyV2(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	c := a.store.companies[id]
	var out map[string]any
	if c != nil {
		out = askedOnly(r, c.v2())
	}
	a.store.mu.RUnlock()
	if c == nil {
		return v2Error(http.StatusNotFound, fmt.Sprintf("Company with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *restAPI) createCompanyV2(w http.ResponseWriter, r *http.Request) error {
	return v2Create(a, w, r, a.store.createCompany)
}

func (a *restAPI) patchCompanyV2(w http.ResponseWriter, r *http.Request) error {
	return v2Patch(a, w, r, a.store.updateCompany)
}

func (a *restAPI) deleteCompanyV2(w http.ResponseWriter, r *http.Request) error {
	return v2Delete(w, r, a.store.deleteCompany)
}
