package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// Keap is what ingest needs of the Keap client (*keap.Client satisfies it).
type Keap interface {
	ListContacts(ctx context.Context, q keap.ContactQuery) (*keap.Page[keap.Contact], error)
	ListOrders(ctx context.Context, q keap.OrderQuery) (*keap.Page[keap.Order], error)
	ContactsSince(ctx context.Context, since time.Time, q keap.ContactQuery) iter.Seq2[keap.Contact, error]
	GetContact(ctx context.Context, id keap.ID, optional ...string) (*keap.Contact, error)
	Tags(ctx context.Context, q keap.TagQuery) iter.Seq2[keap.Tag, error]
	GetTag(ctx context.Context, id keap.ID) (*keap.Tag, error)
	TaggedContacts(ctx context.Context, tagID keap.ID) iter.Seq2[keap.TaggedContact, error]
	OrdersSince(ctx context.Context, since time.Time, q keap.OrderQuery) iter.Seq2[keap.Order, error]
	GetOrder(ctx context.Context, id keap.ID) (*keap.Order, error)
	SubscriptionsV2(ctx context.Context, q keap.SubscriptionV2Query) iter.Seq2[keap.Subscription, error]
	GetSubscriptionV2(ctx context.Context, id keap.ID) (*keap.Subscription, error)
}

// record is one Keap object as the database's apply functions take it.
type record struct {
	id       int64
	modified time.Time // Keap's version clock; zero where the object has none (tags)
	raw      json.RawMessage
}

// kind knows how to read one object type from Keap.
type kind struct {
	objectType string // keapsync's name, as in keapsync.object_types
	// list yields everything changed since the time given (zero: everything), oldest first
	// where Keap can order by modification.
	list func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error]
	// get fetches one object; keap.ErrNotFound when Keap has no such object.
	get func(ctx context.Context, api Keap, id int64) (record, error)
	// count, where Keap reports totals, says how many objects list will yield (for progress).
	count func(ctx context.Context, api Keap, since time.Time) (int64, error)
}

var kinds = map[string]kind{
	"contact": {
		objectType: "contact",
		list: func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error] {
			return mapSeq(api.ContactsSince(ctx, since, keap.ContactQuery{OptionalProperties: keap.SyncProperties, Limit: 1000}),
				func(c keap.Contact) record { return record{int64(c.ID), c.LastUpdated.Time, c.Raw} })
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
			return record{int64(c.ID), c.LastUpdated.Time, c.Raw}, nil
		},
	},
	"tag": {
		objectType: "tag",
		list: func(ctx context.Context, api Keap, _ time.Time) iter.Seq2[record, error] {
			// v1 tags carry no timestamps: every listing is the whole set (it is small).
			return mapSeq(api.Tags(ctx, keap.TagQuery{Limit: 1000}),
				func(t keap.Tag) record { return record{id: int64(t.ID), raw: t.Raw} })
		},
		get: func(ctx context.Context, api Keap, id int64) (record, error) {
			t, err := api.GetTag(ctx, keap.ID(id))
			if err != nil {
				return record{}, err
			}
			return record{id: int64(t.ID), raw: t.Raw}, nil
		},
	},
	"order": {
		objectType: "order",
		list: func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error] {
			return mapSeq(api.OrdersSince(ctx, since, keap.OrderQuery{Limit: 1000}),
				func(o keap.Order) record { return record{int64(o.ID), o.ModificationDate.Time, o.Raw} })
		},
		count: func(ctx context.Context, api Keap, since time.Time) (int64, error) {
			p, err := api.ListOrders(ctx, keap.OrderQuery{Since: since, Limit: 1})
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
			return record{int64(o.ID), o.ModificationDate.Time, o.Raw}, nil
		},
	},
	"subscription": {
		objectType: "subscription",
		list: func(ctx context.Context, api Keap, since time.Time) iter.Seq2[record, error] {
			// v2 is the only way to see when a subscription changed; it cannot filter by that
			// time, so older ones are skipped here after ordering by it.
			seq := api.SubscriptionsV2(ctx, keap.SubscriptionV2Query{OrderBy: "modification_time asc", PageSize: 1000})
			return func(yield func(record, error) bool) {
				for s, err := range seq {
					if err != nil {
						yield(record{}, err)
						return
					}
					if !since.IsZero() && s.ModificationTime.Time.Before(since) {
						continue
					}
					if !yield(record{int64(s.ID), s.ModificationTime.Time, s.Raw}, nil) {
						return
					}
				}
			}
		},
		get: func(ctx context.Context, api Keap, id int64) (record, error) {
			s, err := api.GetSubscriptionV2(ctx, keap.ID(id))
			if err != nil {
				return record{}, err
			}
			return record{int64(s.ID), s.ModificationTime.Time, s.Raw}, nil
		},
	},
}

// ObjectTypes lists what backfill and reconcile cover, in dependency order.
var ObjectTypes = []string{"tag", "contact", "order", "subscription"}

func kindOf(objectType string) (kind, error) {
	k, ok := kinds[objectType]
	if !ok {
		return kind{}, fmt.Errorf("unknown object type %q (want one of %v)", objectType, ObjectTypes)
	}
	return k, nil
}

func mapSeq[T any](seq iter.Seq2[T, error], f func(T) record) iter.Seq2[record, error] {
	return func(yield func(record, error) bool) {
		for v, err := range seq {
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
