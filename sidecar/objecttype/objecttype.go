// Package objecttype is the one list of the Keap object types keapsync syncs: their keap.* table,
// the REST Hook events about them and the order they are swept in. Ingest, push, hooks and the
// CLI derive what they need from it; a test holds it to keapsync.object_types.
package objecttype

import (
	"slices"
	"strings"
)

// Type is one synced Keap object type.
type Type struct {
	Name  string // keapsync.object_types.object_type
	Table string // keap.<Table>, keapsync.object_types.table_name
	// Events are the hook event keys keapsync subscribes to for this type; a delivery with one
	// of them refetches objects of this type.
	Events []string
	// EventPrefixes also route deliveries with keys not listed in Events (an event Keap adds
	// later, a key spelled differently) to this type, e.g. "contact.".
	EventPrefixes []string
	// Swept: backfill and reconcile list this type from Keap (a type without a listing of its
	// own, like tag categories, arrives with another).
	Swept bool
	// Parts are further keap.* tables whose rows are part of a record of this type; a local
	// change to one is a change of the record IDColumn names (a tag on a contact).
	Parts []Part
	// Model, for a type whose Keap records carry custom fields, is the path of Keap's model of
	// them (its custom_fields list), read on every backfill and reconcile. Exactly these types
	// have keapsync.object_types.map_column set, which gives them a keap.<Table>_custom view; a
	// test holds the two together. A v2 type's Fields must then ask for custom_fields.
	Model string
	// V2, where set, reads (and, as keapsync.object_types.push_ops allow, writes) the type
	// through Keap's v2 REST resource without code of its own: list, get, create, patch, delete.
	// A v1 resource of the same shape is read and written alike (see V2Resource.V1).
	V2 *V2Resource
	// CustomFields, for a type read (and written) through v1, whose v1 records carry no custom
	// fields, is where Keap's v2 has them (notes, orders): the records a read brings get the v2
	// record's custom_fields list added before they are applied, and a local change of them is
	// written through v2. Model must then be set.
	CustomFields *CustomFieldsV2
}

// CustomFieldsV2 is the v2 side of a v1 type's custom fields.
type CustomFieldsV2 struct {
	// List is the v2 listing that reads records by id (filter=ids==1,2,3) and by update time
	// (SinceFilter), e.g. "/v2/notes".
	List string
	// Fields are asked for on every read of List (notes leave custom_fields out unless asked;
	// orders' listing sends them unasked and takes no fields).
	Fields []string
	// SinceFilter is List's filter by update time: since_time for notes, modified_since_time
	// for orders.
	SinceFilter string
	// Patch is the v2 update of one record, taking update_mask=custom_fields: {id} is the
	// record's Keap id, {parent_id} the one keapsync.push_request names (a note's contact).
	Patch string
}

// V2Resource is a Keap v2 collection read and written generically, or a v1 one of the same
// shape: items listed under the collection's name, get, create, patch and delete by id.
type V2Resource struct {
	// Path is e.g. "/v2/companies". A path under /v1/ is a v1 resource: listed by limit and
	// offset, with no filter by update time (NoSince must be set) and no fields, patched with
	// the properties in the body (no update_mask), ids as numbers (keapsync.object_types.number_ids).
	Path string
	// Fields are asked for on every read: v2 leaves some properties out unless named, and a
	// property left out would read as cleared.
	Fields []string
	// NoSince: the collection cannot be filtered by update time (products); every listing is
	// the whole collection, and what is older than the sweep's high-water mark is skipped.
	NoSince bool
	// A NoSince collection's batch of hooked changes is read in calls that do not grow with the
	// collection through one of these (else by listing all of it, or a GET per id if fewer):
	// IDsFilter is its filter by a list of ids (products: product_ids==1,2,3), keap.IDsPerCall
	// ids a call; NewestFirst its order_by newest first (opportunities: "update_time desc"), read
	// until every changed record was seen or the listing is past the batch's window.
	IDsFilter, NewestFirst string
}

// V1 says the resource is Keap's v1 REST API rather than v2.
func (r V2Resource) V1() bool { return strings.HasPrefix(r.Path, "/v1/") }

// Part is a child table published with its owner's type.
type Part struct {
	Table    string
	IDColumn string // the column holding the owner's local id
}

// All lists the types in dependency order: a type comes after those its records refer to, so a
// backfill in this order finds what a record points at already there.
var All = []Type{
	{Name: "tag_category", Table: "tag_categories"},
	{
		Name: "tag", Table: "tags", Swept: true,
		Events:        []string{"contactGroup.add", "contactGroup.edit", "contactGroup.delete"},
		EventPrefixes: []string{"contactGroup."},
	},
	{
		Name: "company", Table: "companies", Swept: true,
		Events:        []string{"company.add", "company.edit", "company.delete"},
		EventPrefixes: []string{"company."},
		Model:         "/v2/companies/model",
		V2: &V2Resource{Path: "/v2/companies", Fields: []string{"company_name", "email_address", "phone_number",
			"website", "notes", "address", "create_time", "update_time", "custom_fields"}},
	},
	{
		Name: "product", Table: "products", Swept: true,
		Events:        []string{"product.add", "product.edit", "product.delete"},
		EventPrefixes: []string{"product."},
		V2:            &V2Resource{Path: "/v2/products", NoSince: true, IDsFilter: "product_ids"},
	},
	{
		// The pipeline: Keap sends no hook about stages; backfill and reconcile bring them.
		Name: "opportunity_stage", Table: "opportunity_stages", Swept: true,
		V2: &V2Resource{Path: "/v2/opportunities/stages", NoSince: true},
	},
	{
		Name: "contact", Table: "contacts", Swept: true,
		// contactGroup.applied/.removed change contacts' tag ids, so contacts are refetched.
		Events: []string{"contact.add", "contact.edit", "contact.delete",
			"contactGroup.applied", "contactGroup.removed"},
		EventPrefixes: []string{"contact."},
		Model:         "/v1/contacts/model",
		Parts:         []Part{{Table: "contact_tags", IDColumn: "contact_id"}},
	},
	{
		Name: "note", Table: "notes", Swept: true,
		Events:        []string{"note.add", "note.edit", "note.delete"},
		EventPrefixes: []string{"note."},
		// Read and written through v1, whose notes are what keap.notes was built on; their
		// custom fields come from v2 (v1's Note has none; Keap's model of them is the tasks'
		// one, "combined" as v2 documents). v2 writes a note only under its contact. A batch of
		// hooked notes may be read through v2 where v2's notes prove to be v1's (ingest's
		// agreement.go).
		V2:    &V2Resource{Path: "/v1/notes", NoSince: true},
		Model: "/v2/notes/model",
		CustomFields: &CustomFieldsV2{List: "/v2/notes", Fields: []string{"custom_fields"}, SinceFilter: "since_time",
			Patch: "/v2/contacts/{parent_id}/notes/{id}"},
	},
	{
		Name: "task", Table: "tasks", Swept: true,
		Events:        []string{"task.add", "task.edit", "task.delete"},
		EventPrefixes: []string{"task."},
		Model:         "/v2/tasks/model",
		V2:            &V2Resource{Path: "/v2/tasks", Fields: []string{"custom_fields"}},
	},
	{
		// After contacts and stages, which an opportunity names. stage_move is a change of stage.
		Name: "opportunity", Table: "opportunities", Swept: true,
		Events:        []string{"opportunity.add", "opportunity.edit", "opportunity.delete", "opportunity.stage_move"},
		EventPrefixes: []string{"opportunity."},
		Model:         "/v2/opportunities/model",
		// Its ids filter takes at most 100 ids (swagger.yml): 10 calls per 1,000 changes, so a
		// batch is read newest first instead.
		V2: &V2Resource{Path: "/v2/opportunities", Fields: []string{"custom_fields"}, NoSince: true,
			NewestFirst: "update_time desc"},
	},
	{
		Name: "order", Table: "orders", Swept: true,
		// A payment may leave the order's modification_date and order.edit alone (FACTS §7);
		// invoice.payment.* name the invoice, which in v1 is the order.
		Events: []string{"order.add", "order.edit", "order.delete",
			"invoice.payment.add", "invoice.payment.edit", "invoice.payment.delete"},
		EventPrefixes: []string{"order.", "invoice.payment."},
		// Read through v1 (items, payments and totals as keap.orders was built on them); the
		// custom fields come from v2's OrderV2, and only they are written (v1 has no order update).
		Model:        "/v2/orders/model",
		CustomFields: &CustomFieldsV2{List: "/v2/orders", SinceFilter: "modified_since_time", Patch: "/v2/orders/{id}"},
	},
	{
		Name: "subscription", Table: "subscriptions", Swept: true,
		Events:        []string{"subscription.add", "subscription.edit", "subscription.delete"},
		EventPrefixes: []string{"subscription."},
		// Read through v2, which sends custom_fields unasked (its listing takes no fields).
		Model: "/v2/subscriptions/model",
	},
}

// Names are the names of all types, in dependency order.
func Names() []string { return names(func(Type) bool { return true }) }

// SweptNames are the types backfill and reconcile cover, in dependency order.
func SweptNames() []string { return names(func(t Type) bool { return t.Swept }) }

func names(keep func(Type) bool) []string {
	var out []string
	for _, t := range All {
		if keep(t) {
			out = append(out, t.Name)
		}
	}
	return out
}

// ByName finds a type.
func ByName(name string) (Type, bool) {
	i := slices.IndexFunc(All, func(t Type) bool { return t.Name == name })
	if i < 0 {
		return Type{}, false
	}
	return All[i], true
}

// EventKeys are all event keys keapsync subscribes to, one subscription each.
func EventKeys() []string {
	var out []string
	for _, t := range All {
		out = append(out, t.Events...)
	}
	return out
}

// OfEvent is the type whose objects an event key names, "" when keapsync ignores the event. A
// listed event wins over a prefix (contactGroup.applied is about contacts, contactGroup.edit
// about tags).
func OfEvent(eventKey string) string {
	for _, t := range All {
		if slices.Contains(t.Events, eventKey) {
			return t.Name
		}
	}
	for _, t := range All {
		for _, p := range t.EventPrefixes {
			if strings.HasPrefix(eventKey, p) {
				return t.Name
			}
		}
	}
	return ""
}

// Tables are every keap.* table that holds synced records or their parts: what the push
// publication carries.
func Tables() []string {
	var out []string
	for _, t := range All {
		out = append(out, t.Table)
		for _, p := range t.Parts {
			out = append(out, p.Table)
		}
	}
	return out
}

// OfTable says which type a keap.* table's rows belong to, and the column holding the record's
// local id ("id" for the type's own table); ok is false for a table no type owns.
func OfTable(table string) (name, idColumn string, ok bool) {
	for _, t := range All {
		if t.Table == table {
			return t.Name, "id", true
		}
		for _, p := range t.Parts {
			if p.Table == table {
				return t.Name, p.IDColumn, true
			}
		}
	}
	return "", "", false
}
