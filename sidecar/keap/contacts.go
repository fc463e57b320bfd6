package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// Contact is a v1 contact. The typed fields are the ones Go code reads; Raw is Keap's JSON as
// received, which the database's apply functions take as is (law 1: Postgres decides).
type Contact struct {
	ID             ID                 `json:"id"`
	GivenName      string             `json:"given_name"`
	FamilyName     string             `json:"family_name"`
	MiddleName     string             `json:"middle_name"`
	JobTitle       string             `json:"job_title"`
	EmailAddresses []EmailAddress     `json:"email_addresses"`
	PhoneNumbers   []PhoneNumber      `json:"phone_numbers"`
	Addresses      []Address          `json:"addresses"`
	CustomFields   []CustomFieldValue `json:"custom_fields"`
	TagIDs         []ID               `json:"tag_ids"`
	Company        *CompanyRef        `json:"company"`
	OwnerID        ID                 `json:"owner_id"`
	EmailStatus    string             `json:"email_status"`
	EmailOptedIn   Bool               `json:"email_opted_in"`
	DateCreated    Time               `json:"date_created"`
	LastUpdated    Time               `json:"last_updated"` // Keap's version clock for contacts
	Raw            json.RawMessage    `json:"-"`
}

// UnmarshalJSON decodes liberally and keeps the raw JSON.
func (c *Contact) UnmarshalJSON(b []byte) error {
	type plain Contact
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("contact: %w", err)
	}
	*c = Contact(p)
	c.Raw = raw
	return nil
}

// Email returns the first email address (EMAIL1 when present), or "".
func (c *Contact) Email() string {
	for _, e := range c.EmailAddresses {
		if e.Field == "EMAIL1" {
			return e.Email
		}
	}
	if len(c.EmailAddresses) > 0 {
		return c.EmailAddresses[0].Email
	}
	return ""
}

// EmailAddress is one of EMAIL1..EMAIL3.
type EmailAddress struct {
	Email string `json:"email"`
	Field string `json:"field"`
}

// PhoneNumber is one of PHONE1..PHONE5.
type PhoneNumber struct {
	Number    string `json:"number"`
	Extension string `json:"extension,omitempty"`
	Type      string `json:"type,omitempty"`
	Field     string `json:"field"`
}

// Address is the BILLING, SHIPPING or OTHER address.
type Address struct {
	Field       string `json:"field"`
	Line1       string `json:"line1,omitempty"`
	Line2       string `json:"line2,omitempty"`
	Locality    string `json:"locality,omitempty"`
	Region      string `json:"region,omitempty"`
	CountryCode string `json:"country_code,omitempty"`
	PostalCode  string `json:"postal_code,omitempty"`
	ZipCode     string `json:"zip_code,omitempty"`
	ZipFour     string `json:"zip_four,omitempty"`
}

// CustomFieldValue is a contact's value for one custom field; Content is any JSON value.
type CustomFieldValue struct {
	ID      ID              `json:"id"`
	Content json.RawMessage `json:"content"`
}

// CompanyRef is the company a contact belongs to.
type CompanyRef struct {
	ID          ID     `json:"id"`
	CompanyName string `json:"company_name,omitempty"`
}

// Optional properties v1 leaves out of contacts unless asked (FACTS.md §4).
const (
	PropCustomFields = "custom_fields"
	PropJobTitle     = "job_title"
	PropLeadSourceID = "lead_source_id"
	PropTagIDs       = "tag_ids"
)

// SyncProperties are the optional properties every contact read of keapsync asks for: without
// them the merge would read custom fields, tags, job title and lead source as unknown.
var SyncProperties = []string{PropCustomFields, PropTagIDs, PropJobTitle, PropLeadSourceID}

// Contact list orders.
const (
	OrderByID          = "id"
	OrderByDateCreated = "date_created"
	OrderByLastUpdated = "last_updated"
	OrderByEmail       = "email"
)

// ContactQuery filters GET /v1/contacts. Zero fields are not sent.
type ContactQuery struct {
	Email, GivenName, FamilyName string
	Since, Until                 time.Time // on last_updated: since inclusive, until exclusive
	Order                        string    // OrderBy*
	Descending                   bool
	OptionalProperties           []string // e.g. PropCustomFields, PropTagIDs
	Limit, Offset                int      // Keap's page size is at most 1000
}

func (q ContactQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("email", q.Email)
	set("given_name", q.GivenName)
	set("family_name", q.FamilyName)
	if !q.Since.IsZero() {
		v.Set("since", FormatTime(q.Since))
	}
	if !q.Until.IsZero() {
		v.Set("until", FormatTime(q.Until))
	}
	set("order", q.Order)
	if q.Order != "" {
		v.Set("order_direction", "ASCENDING")
		if q.Descending {
			v.Set("order_direction", "DESCENDING")
		}
	}
	for _, p := range q.OptionalProperties {
		v.Add("optional_properties", p)
	}
	pageQuery(v, q.Limit, q.Offset)
	return v
}

const epContacts = "/v1/contacts"

// ListContacts fetches one page.
func (c *Client) ListContacts(ctx context.Context, q ContactQuery) (*Page[Contact], error) {
	return listPage[Contact](ctx, c, c.get(epContacts, epContacts, q.values()), "contacts")
}

// Contacts yields every contact matching q, following next links.
func (c *Client) Contacts(ctx context.Context, q ContactQuery) iter.Seq2[Contact, error] {
	return walk[Contact](ctx, c, c.get(epContacts, epContacts, q.values()), "contacts")
}

// ContactsSince yields every contact modified at or after since (and before q.Until, if set)
// in last_updated order, paging by timestamp (see keyset): the incremental sync's listing.
// q.Since, q.Order and q.Offset are replaced.
func (c *Client) ContactsSince(ctx context.Context, since time.Time, q ContactQuery) iter.Seq2[Contact, error] {
	build := func(cursor time.Time, offset int) request {
		qq := q
		qq.Since, qq.Order, qq.Descending, qq.Offset = cursor, OrderByLastUpdated, false, offset
		return c.get(epContacts, epContacts, qq.values())
	}
	return keyset(ctx, c, since, build, "contacts", func(ct Contact) (time.Time, ID) { return ct.LastUpdated.Time, ct.ID })
}

// GetContact fetches one contact, with the optional properties named.
func (c *Client) GetContact(ctx context.Context, id ID, optional ...string) (*Contact, error) {
	q := url.Values{}
	for _, p := range optional {
		q.Add("optional_properties", p)
	}
	var out Contact
	if err := c.do(ctx, c.get("/v1/contacts/{id}", fmt.Sprintf("/v1/contacts/%d", id), q), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateContact creates a contact from body (a struct, a map or json.RawMessage in v1's
// shape; Keap needs an email address or a phone number). It is not retried on network errors.
func (c *Client) CreateContact(ctx context.Context, body any) (*Contact, error) {
	var out Contact
	r := request{method: http.MethodPost, endpoint: epContacts, path: epContacts, body: body}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Duplicate options for UpsertContact: which existing contact counts as the same person.
const (
	DuplicateEmail        = "Email"
	DuplicateEmailAndName = "EmailAndName"
)

// UpsertContact is PUT /v1/contacts: update the contact matching by duplicateOption, or
// create one. Matching makes it safe to repeat, so unlike CreateContact it is retried.
func (c *Client) UpsertContact(ctx context.Context, duplicateOption string, body any) (*Contact, error) {
	fields, err := objectFields(body)
	if err != nil {
		return nil, fmt.Errorf("keap PUT %s: %w", epContacts, err)
	}
	opt, _ := json.Marshal(duplicateOption)
	fields["duplicate_option"] = opt
	var out Contact
	r := request{method: http.MethodPut, endpoint: epContacts, path: epContacts, body: fields, idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateContact is PATCH /v1/contacts/{id}: only the values in body change, and with an
// updateMask only the properties named there. Setting values is repeatable, so it is retried.
func (c *Client) UpdateContact(ctx context.Context, id ID, body any, updateMask ...string) (*Contact, error) {
	q := url.Values{}
	for _, m := range updateMask {
		q.Add("update_mask", m)
	}
	var out Contact
	r := request{method: http.MethodPatch, endpoint: "/v1/contacts/{id}", path: fmt.Sprintf("/v1/contacts/%d", id),
		query: q, body: body, idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteContact deletes a contact.
func (c *Client) DeleteContact(ctx context.Context, id ID) error {
	r := request{method: http.MethodDelete, endpoint: "/v1/contacts/{id}", path: fmt.Sprintf("/v1/contacts/%d", id), idempotent: true}
	return c.do(ctx, r, nil)
}

// ContactModel is GET /v1/contacts/model: custom field metadata and the optional properties.
type ContactModel struct {
	CustomFields       []CustomField   `json:"custom_fields"`
	OptionalProperties []string        `json:"optional_properties"`
	Raw                json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw JSON.
func (m *ContactModel) UnmarshalJSON(b []byte) error {
	type plain ContactModel
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("contact model: %w", err)
	}
	*m = ContactModel(p)
	m.Raw = raw
	return nil
}

// CustomField is one custom field's metadata.
type CustomField struct {
	ID         ID     `json:"id"`
	Label      string `json:"label"`
	FieldName  string `json:"field_name"`
	FieldType  string `json:"field_type"`
	RecordType string `json:"record_type"`
	// Options are a select field's choices (Dropdown, ListBox, Radio), nested for a Drilldown.
	Options []CustomFieldOption `json:"options,omitempty"`
}

// CustomFieldOption is one choice of a select field (its id is a string in Keap's document).
type CustomFieldOption struct {
	ID      string              `json:"id"`
	Label   string              `json:"label"`
	Options []CustomFieldOption `json:"options,omitempty"`
}

// GetContactModel fetches the custom field model.
func (c *Client) GetContactModel(ctx context.Context) (*ContactModel, error) {
	var out ContactModel
	if err := c.do(ctx, c.get("/v1/contacts/model", "/v1/contacts/model", nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetModel fetches the model at path (GET /v1/contacts/model, /v2/companies/model...) as Keap
// sent it: v1's and v2's ObjectModel alike list custom_fields (id, label, field_type, options).
func (c *Client) GetModel(ctx context.Context, path string) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.do(ctx, c.get(path, path, nil), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// objectFields turns a body (struct, map or raw JSON) into its top-level members, so a field
// can be added without knowing the caller's type.
func objectFields(body any) (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	fields := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("body must be a JSON object: %w", err)
	}
	if fields == nil {
		fields = map[string]json.RawMessage{}
	}
	return fields, nil
}
