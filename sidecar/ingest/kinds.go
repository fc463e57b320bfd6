package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// Keap is what ingest needs of the Keap client (*keap.Client satisfies it).
type Keap interface {
	ListContacts(ctx context.Context, q keap.ContactQuery) (*keap.Page[keap.Contact], error)
	ListOrders(ctx context.Context, q keap.OrderQuery) (*keap.Page[keap.Order], error)
	ContactsSince(ctx context.Context, since time.Time, q keap.ContactQuery) iter.Seq2[keap.Contact, error]
	GetContact(ctx context.Context, id keap.ID, optional ...string) (*keap.Contact, error)
	Tags(ctx context.Context, q keap.TagQuery) iter.Seq2[keap.Tag, error]
	GetTag(ctx context.Context, id keap.ID) (*keap.Tag, error)
	TagsByID(ctx context.Context, ids []keap.ID) iter.Seq2[keap.Tag, error]
	TaggedContacts(ctx context.Context, tagID keap.ID) iter.Seq2[keap.TaggedContact, error]
	OrdersSince(ctx context.Context, since time.Time, q keap.OrderQuery) iter.Seq2[keap.Order, error]
	GetOrder(ctx context.Context, id keap.ID) (*keap.Order, error)
	OrderPayments(ctx context.Context, orderID keap.ID) ([]keap.Payment, error)
	OrdersPayments(ctx context.Context, orderIDs []keap.ID) (map[keap.ID][]keap.Payment, error)
	SubscriptionsV2(ctx context.Context, q keap.SubscriptionV2Query) iter.Seq2[keap.Subscription, error]
	GetSubscriptionV2(ctx context.Context, id keap.ID) (*keap.Subscription, error)
	Objects(ctx context.Context, path string, q keap.ObjectQuery) iter.Seq2[keap.Object, error]
	GetObject(ctx context.Context, path string, id keap.ID, fields ...string) (*keap.Object, error)
	GetModel(ctx context.Context, path string) (json.RawMessage, error)
}

// record is one Keap object as the database's apply functions take it.
type record struct {
	id       int64
	modified time.Time // Keap's version clock; zero where the object has none (tags)
	raw      json.RawMessage
	// bad is set for an object Keap listed that does not decode: it is parked, never applied.
	bad   error
	order *keap.Order // for orders: the decoded object (its totals say whether it has payments)
	// withCustom: raw carries the custom_fields v2 gives (it was read through v2).
	withCustom bool
}

// kind knows how to read one object type from Keap.
type kind struct {
	objectType string // the registry's name (objecttype.All), as in keapsync.object_types
	// list yields everything changed since the time given (zero: everything), at least once.
	list func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error]
	// ascending: list yields in order of Keap's clock, as Keap documents for this listing, so a
	// checkpoint may follow each applied page. Otherwise it moves only when a sweep is done.
	ascending bool
	// whole: list cannot filter by time, so every listing walks the whole collection; hooked
	// changes are then listed only when that takes fewer calls than a GET per id.
	whole bool
	// changed, where set, reads the current version of the records ids names (hooked changes of
	// them reported since since) in calls that grow with how many there are, not with the
	// collection: a whole kind's batch of hooks is read so instead of through list. It may
	// yield records not asked about, and leave out some asked about (deleted, or read no further).
	changed func(ctx context.Context, api Keap, ids []int64, since time.Time) iter.Seq2[record, error]
	// reconcileAll: a reconcile walks everything, not what changed since its checkpoint, because
	// Keap may change the object without moving its stamp; objects whose Keap JSON is exactly
	// what is stored are skipped before the apply.
	reconcileAll bool
	// get fetches one object; keap.ErrNotFound when Keap has no such object.
	get func(ctx context.Context, api Keap, id int64) (record, error)
	// complete, where set, adds what list leaves out and get includes (an order's payments).
	complete func(ctx context.Context, api Keap, rec record) (record, error)
	// completeAll, where set, is complete for many records in few calls (the payments of many
	// orders in one listing), for a batch of hooks that names many and for a sweep's pages;
	// both go through completeListed, which falls back to complete when Keap's listing is unusable.
	completeAll func(ctx context.Context, api Keap, recs []record) ([]record, error)
	// count, where Keap reports totals, says how many objects list will yield (for progress).
	count func(ctx context.Context, api Keap, since time.Time) (int64, error)
	// between, where set, lists like list but only what is stamped before until (zero: no
	// end), so ranges of an ascending listing can be fetched at once; span then says how many
	// objects list would yield and the newest stamp among them (its first page tells the oldest).
	// limit is the records per call (0: Keap's largest).
	between func(ctx context.Context, api Keap, since, until time.Time, limit int) iter.Seq2[record, error]
	span    func(ctx context.Context, api Keap, since time.Time) (newest time.Time, n int, err error)
	// page, where set, reads one page of the whole listing in Keap's clock order at an offset:
	// a backfill asks for several beside its first (see fetchSlices).
	page func(ctx context.Context, api Keap, offset, limit int) ([]record, error)
	// model, where the type has custom fields, is the path of Keap's model of them (the
	// registry's Model), whose custom_fields keapsync.apply_custom_field_model stores.
	model string
	// custom, for a type read through v1 whose records carry no custom fields, is where v2 has
	// them (the registry's CustomFields; see withCustomFields).
	custom *objecttype.CustomFieldsV2
	// asV1, for such a type, puts custom's v2 copy of a record in v1's shape (keap.NoteAsV1),
	// which is then compared with v1's, and may stand in for it (see agreement.go).
	asV1 func(v2 json.RawMessage, lastUpdatedBy func(keap.ID) json.RawMessage) (json.RawMessage, error)
}

// listLimit is Keap's largest v1 page.
const listLimit = 1000

// contactsBetween lists contacts stamped from since (inclusive) to until (exclusive; zero: no
// end) in Keap's clock order.
func contactsBetween(ctx context.Context, api Keap, since, until time.Time, limit int) iter.Seq2[record, error] {
	if limit == 0 {
		limit = listLimit
	}
	q := keap.ContactQuery{OptionalProperties: keap.SyncProperties, Limit: limit, Until: until}
	return mapSeq(api.ContactsSince(ctx, since, q), contactRecord)
}

// contactRecord is a contact as the sweep and the worker carry it.
func contactRecord(c keap.Contact) record {
	return record{id: int64(c.ID), modified: c.LastUpdated.Time, raw: c.Raw}
}

var kinds = map[string]kind{
	"contact": {
		objectType: "contact",
		ascending:  true, // order=last_updated&order_direction=ASCENDING, documented
		list: func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error] {
			return contactsBetween(ctx, api, since, time.Time{}, 0)
		},
		between: contactsBetween,
		page: func(ctx context.Context, api Keap, offset, limit int) ([]record, error) {
			p, err := api.ListContacts(ctx, keap.ContactQuery{OptionalProperties: keap.SyncProperties,
				Order: keap.OrderByLastUpdated, Offset: offset, Limit: limit})
			if err != nil {
				return nil, err
			}
			if len(p.Bad) > 0 {
				// The page cannot vouch for its range: walked, the record is parked as bad.
				return nil, p.Bad[0]
			}
			recs := make([]record, len(p.Items))
			for i, c := range p.Items {
				recs[i] = contactRecord(c)
			}
			return recs, nil
		},
		span: func(ctx context.Context, api Keap, since time.Time) (newest time.Time, n int, err error) {
			p, err := api.ListContacts(ctx, keap.ContactQuery{Since: since, Order: keap.OrderByLastUpdated, Descending: true, Limit: 1})
			if err != nil || len(p.Items) == 0 {
				return newest, 0, err
			}
			return p.Items[0].LastUpdated.Time, p.Count, nil
		},
		count: func(ctx context.Context, api Keap, since time.Time) (int64, error) {
			p, err := api.ListContacts(ctx, keap.ContactQuery{Since: since, Limit: 1})
			if err != nil {
				return 0, err
			}
			return int64(p.Count), nil
		},
		get: func(ctx context.Context, api Keap, id int64) (record, error) {
			c, err := api.GetContact(ctx, keap.ID(id), keap.SyncProperties...)
			if err != nil {
				return record{}, err
			}
			return contactRecord(*c), nil
		},
	},
	"tag": {
		objectType: "tag",
		whole:      true,
		list: func(ctx context.Context, api Keap, _ time.Time) iter.Seq2[record, error] {
			// v1 tags carry no timestamps: every listing is the whole set.
			return mapSeq(api.Tags(ctx, keap.TagQuery{Limit: 1000}), tagRecord)
		},
		// A batch of hooks is read through v2, which lists tags by id, in v1's shape.
		changed: func(ctx context.Context, api Keap, ids []int64, _ time.Time) iter.Seq2[record, error] {
			return mapSeq(api.TagsByID(ctx, keapIDs(ids)), tagRecord)
		},
		get: func(ctx context.Context, api Keap, id int64) (record, error) {
			t, err := api.GetTag(ctx, keap.ID(id))
			if err != nil {
				return record{}, err
			}
			return tagRecord(*t), nil
		},
	},
	"order": {
		objectType: "order",
		// A payment may leave modification_date alone (FACTS §7); should its hook be lost (or
		// not offered), only a walk over every order sees the new totals.
		reconcileAll: true,
		list: func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error] {
			return mapSeq(api.OrdersSince(ctx, since, keap.OrderQuery{Limit: 1000}), orderRecord)
		},
		count: func(ctx context.Context, api Keap, since time.Time) (int64, error) {
			if !since.IsZero() {
				// Keap does not say which date since filters on: no count would match the walk.
				return 0, errNoCount
			}
			p, err := api.ListOrders(ctx, keap.OrderQuery{Limit: 1})
			if err != nil {
				return 0, err
			}
			return int64(p.Count), nil
		},
		get: func(ctx context.Context, api Keap, id int64) (record, error) {
			o, err := api.GetOrder(ctx, keap.ID(id))
			if err != nil {
				return record{}, err
			}
			return withPayments(ctx, api, orderRecord(*o))
		},
		complete:    withPayments,
		completeAll: withPaymentsOfAll,
	},
	"subscription": {
		objectType: "subscription",
		// v2 is the only way to see when a subscription changed; it cannot filter by that time,
		// so every listing walks the whole collection, older ones skipped after ordering by it.
		whole: true,
		list: func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error] {
			seq := mapSeq(api.SubscriptionsV2(ctx, keap.SubscriptionV2Query{OrderBy: "modification_time asc", PageSize: 1000}), subscriptionRecord)
			return func(yield func(record, error) bool) {
				for r, err := range seq {
					if err == nil && r.bad == nil && !since.IsZero() && r.modified.Before(since) {
						continue
					}
					if !yield(r, err) {
						return
					}
				}
			}
		},
		changed: func(ctx context.Context, api Keap, ids []int64, since time.Time) iter.Seq2[record, error] {
			seq := api.SubscriptionsV2(ctx, keap.SubscriptionV2Query{OrderBy: "modification_time desc", PageSize: 1000})
			return newestFirst(mapSeq(seq, subscriptionRecord), ids, since)
		},
		get: func(ctx context.Context, api Keap, id int64) (record, error) {
			s, err := api.GetSubscriptionV2(ctx, keap.ID(id))
			if err != nil {
				return record{}, err
			}
			return subscriptionRecord(*s), nil
		},
	},
}

// The registry's v2 types are read without code of their own, and every type with custom
// fields has its model read the same way. Notes' v2 copy can be put in v1's shape.
func init() {
	for _, t := range objecttype.All {
		if t.V2 != nil {
			kinds[t.Name] = v2Kind(t.Name, *t.V2)
		}
		if k, ok := kinds[t.Name]; ok && t.Model != "" {
			k.model, k.custom = t.Model, t.CustomFields
			kinds[t.Name] = k
		}
	}
	note := kinds["note"]
	note.asV1 = keap.NoteAsV1
	kinds["note"] = note
}

// v2Kind reads a type through its v2 collection (or a v1 one of the same shape, notes):
// since_time filters by update_time, but the listing cannot be ordered by it, so the checkpoint
// moves only when a sweep is done.
func v2Kind(name string, res objecttype.V2Resource) kind {
	k := kind{
		objectType: name,
		whole:      res.NoSince,
		list: func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error] {
			q := keap.ObjectQuery{Since: since, Fields: res.Fields, PageSize: 1000}
			if res.NoSince {
				q.Since = time.Time{}
			}
			seq := mapSeq(api.Objects(ctx, res.Path, q), objectRecord)
			return func(yield func(record, error) bool) {
				for r, err := range seq {
					if err == nil && r.bad == nil && !since.IsZero() && r.modified.Before(since) {
						continue // the whole collection was listed: older ones are here already
					}
					if !yield(r, err) {
						return
					}
				}
			}
		},
		get: func(ctx context.Context, api Keap, id int64) (record, error) {
			o, err := api.GetObject(ctx, res.Path, keap.ID(id), res.Fields...)
			if err != nil {
				return record{}, err
			}
			return objectRecord(*o), nil
		},
	}
	switch {
	case res.IDsFilter != "":
		k.changed = changedByIDs(res)
	case res.NewestFirst != "":
		k.changed = changedNewestFirst(res)
	}
	return k
}

func tagRecord(t keap.Tag) record { return record{id: int64(t.ID), raw: t.Raw} }

func subscriptionRecord(s keap.Subscription) record {
	return record{id: int64(s.ID), modified: s.ModificationTime.Time, raw: s.Raw}
}

func objectRecord(o keap.Object) record {
	return record{id: int64(o.ID), modified: o.Modified(), raw: o.Raw}
}

// changedByIDs reads records through the collection's filter by ids (keap.IDsPerCall ids a
// call). The listing gives each record as the whole listing does, so what is stored is the same.
func changedByIDs(res objecttype.V2Resource) func(context.Context, Keap, []int64, time.Time) iter.Seq2[record, error] {
	return func(ctx context.Context, api Keap, ids []int64, _ time.Time) iter.Seq2[record, error] {
		if len(ids) == 0 {
			return func(func(record, error) bool) {} // no ids is no filter: it would list everything
		}
		q := keap.ObjectQuery{IDs: keapIDs(ids), IDsFilter: res.IDsFilter, Fields: res.Fields, PageSize: 1000}
		return mapSeq(api.Objects(ctx, res.Path, q), objectRecord)
	}
}

// changedNewestFirst reads the collection newest first (see newestFirst).
func changedNewestFirst(res objecttype.V2Resource) func(context.Context, Keap, []int64, time.Time) iter.Seq2[record, error] {
	return func(ctx context.Context, api Keap, ids []int64, since time.Time) iter.Seq2[record, error] {
		q := keap.ObjectQuery{OrderBy: res.NewestFirst, Fields: res.Fields, PageSize: 1000}
		return newestFirst(mapSeq(api.Objects(ctx, res.Path, q), objectRecord), ids, since)
	}
}

// newestFirst yields the records of seq, a listing newest first, until every record ids names
// was seen or the listing is past since: as many pages as records changed after the oldest of
// them (in a batch of hooks, about as many as the hooks name), however large the collection.
// Keap documents order_by's field names, not that they order by the record's clock (an
// opportunity's update_time is its last_updated_time); should one not, the walk stops early or
// late, and what it did not bring is fetched by id: the cost changes, not what is stored.
func newestFirst(seq iter.Seq2[record, error], ids []int64, since time.Time) iter.Seq2[record, error] {
	return func(yield func(record, error) bool) {
		unseen := make(map[int64]bool, len(ids))
		for _, id := range ids {
			unseen[id] = true
		}
		for r, err := range seq {
			if err == nil && r.bad == nil && r.modified.Before(since) {
				return // past the window: what follows is older still
			}
			if !yield(r, err) || err != nil {
				return
			}
			if delete(unseen, r.id); len(unseen) == 0 {
				return // all seen: the next page is not asked for
			}
		}
	}
}

func keapIDs(ids []int64) []keap.ID {
	out := make([]keap.ID, len(ids))
	for i, id := range ids {
		out[i] = keap.ID(id)
	}
	return out
}

var errNoCount = errors.New("no count for this listing")

func orderRecord(o keap.Order) record {
	return record{id: int64(o.ID), modified: o.ModificationDate.Time, raw: o.Raw, order: &o}
}

// hasPayments: money was paid on the order or refunded from it.
func (r record) hasPayments() bool {
	return r.order != nil && (float64(r.order.TotalPaid) != 0 || float64(r.order.RefundTotal) != 0)
}

// withPayments adds the order's payments (GET /v1/orders/{id}/payments) to its Keap object as
// `payments`, which the apply writes to keap.order_payments. An order nothing was paid on or
// refunded from has none, so it costs no call.
func withPayments(ctx context.Context, api Keap, rec record) (record, error) {
	var payments any = []any{}
	if rec.hasPayments() {
		ps, err := api.OrderPayments(ctx, keap.ID(rec.id))
		if errors.Is(err, keap.ErrNotFound) {
			return rec, nil // deleted meanwhile: the delete will tell; payments stay unknown
		}
		if err != nil {
			return record{}, fmt.Errorf("payments of order %d: %w", rec.id, err)
		}
		raws := make([]json.RawMessage, 0, len(ps))
		for _, p := range ps {
			raws = append(raws, p.Raw)
		}
		payments = raws
	}
	return rec.withPaymentList(payments), nil
}

// withPaymentsOfAll is withPayments for many orders, their payments read in one listing
// (GET /v2/sales/payments?filter=order_ids==…) instead of a call per order; each payment as
// the per-order read gives it, so what is stored is the same either way.
func withPaymentsOfAll(ctx context.Context, api Keap, recs []record) ([]record, error) {
	var ids []keap.ID
	for _, r := range recs {
		if r.hasPayments() {
			ids = append(ids, keap.ID(r.id))
		}
	}
	var paid map[keap.ID][]keap.Payment
	if len(ids) > 0 {
		var err error
		if paid, err = api.OrdersPayments(ctx, ids); err != nil {
			return nil, fmt.Errorf("payments of %d orders: %w", len(ids), err)
		}
	}
	out := make([]record, len(recs))
	for i, r := range recs {
		var payments any = []any{}
		if r.hasPayments() {
			raws := make([]json.RawMessage, 0, len(paid[keap.ID(r.id)]))
			for _, p := range paid[keap.ID(r.id)] {
				raws = append(raws, p.Raw)
			}
			payments = raws
		}
		out[i] = r.withPaymentList(payments)
	}
	return out, nil
}

// withPaymentList is the record with its payments added as `payments`.
func (r record) withPaymentList(payments any) record {
	out, err := r.with("payments", payments)
	if err != nil {
		return r // not an object we can add to: the apply judges (and parks) it as it is
	}
	return out
}

// with returns the record with one member added to its Keap object.
func (r record) with(name string, v any) (record, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r.raw, &obj); err != nil {
		return record{}, fmt.Errorf("%d: not a JSON object: %w", r.id, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return record{}, err
	}
	obj[name] = b
	if r.raw, err = json.Marshal(obj); err != nil {
		return record{}, err
	}
	return r, nil
}

// ObjectTypes lists what backfill and reconcile cover, in dependency order: the registry's swept
// types, each of which has a kind here (a test holds the two together).
var ObjectTypes = objecttype.SweptNames()

func kindOf(objectType string) (kind, error) {
	k, ok := kinds[objectType]
	if !ok {
		return kind{}, fmt.Errorf("unknown object type %q (want one of %v)", objectType, ObjectTypes)
	}
	return k, nil
}

// kindsOf resolves every type before any work starts, so a typo fails at once.
func kindsOf(objectTypes []string) ([]kind, error) {
	ks := make([]kind, 0, len(objectTypes))
	for _, t := range objectTypes {
		k, err := kindOf(t)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// badRecord turns a listing's *keap.ItemError (one object that does not decode) into a record to
// park; the listing goes on.
func badRecord(err error) (record, bool) {
	var item *keap.ItemError
	if !errors.As(err, &item) {
		return record{}, false
	}
	return record{id: int64(item.ID), raw: item.Raw, bad: item}, true
}

func mapSeq[T any](seq iter.Seq2[T, error], f func(T) record) iter.Seq2[record, error] {
	return func(yield func(record, error) bool) {
		for v, err := range seq {
			if bad, ok := badRecord(err); ok {
				if !yield(bad, nil) {
					return
				}
				continue
			}
			if err != nil {
				yield(record{}, err)
				return
			}
			if !yield(f(v), nil) {
				return
			}
		}
	}
}

// permanent reports a Keap answer about the record that retrying will not change (a 4xx other
// than 429). A 404 for the route is about the configuration, not the record (keap.ErrRouteNotFound).
func permanent(err error) bool {
	var api *keap.APIError
	return errors.As(err, &api) && api.Status >= 400 && api.Status < 500 && api.Status != 429 && !api.RouteNotFound()
}
