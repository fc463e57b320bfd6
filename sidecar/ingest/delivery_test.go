package ingest

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecodeDelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     Delivery
		err      string
	}{
		{"numbers and strings", `{"event_key":"contact.edit","object_keys":[{"id":1},{"id":"2"},{"id":1}]}`,
			Delivery{EventKey: "contact.edit", ObjectType: "contact", IDs: []int64{1, 2}}, ""},
		{"tag applied, apiUrl names the contact", `{"event_key":"contactGroup.applied","object_type":"contactGroup","object_keys":[{"id":5,"apiUrl":"https://api.infusionsoft.com/crm/rest/v1/contacts/5/tags"}]}`,
			Delivery{EventKey: "contactGroup.applied", ObjectType: "contact", IDs: []int64{5}}, ""},
		{"tag removed, apiUrl names the tag", `{"event_key":"contactGroup.removed","object_type":"contactGroup","object_keys":[{"id":7,"apiUrl":"https://api.infusionsoft.com/crm/rest/v1/tags/7"}]}`,
			Delivery{EventKey: "contactGroup.removed", ObjectType: "contact", IDs: []int64{}, TagIDs: []int64{7}}, ""},
		{"tag applied, object_type says contact", `{"event_key":"contactGroup.applied","object_type":"contact","object_keys":[{"id":5}]}`,
			Delivery{EventKey: "contactGroup.applied", ObjectType: "contact", IDs: []int64{5}}, ""},
		{"tag applied, nothing tells", `{"event_key":"contactGroup.applied","object_type":"contactGroup","object_keys":[{"id":5,"apiUrl":null},{"id":6,"apiUrl":""}]}`,
			Delivery{EventKey: "contactGroup.applied", ObjectType: "contact", IDs: []int64{}, EitherIDs: []int64{5, 6}}, ""},
		{"tag edit", `{"event_key":"contactGroup.edit","object_keys":[{"id":9}]}`,
			Delivery{EventKey: "contactGroup.edit", ObjectType: "tag", IDs: []int64{9}}, ""},
		{"ignored event", `{"event_key":"leadsource.add","object_keys":[{"id":9}]}`,
			Delivery{EventKey: "leadsource.add", IDs: []int64{9}}, ""},
		{"no event key", `{"object_keys":[]}`, Delivery{}, "event_key"},
		{"zero id", `{"event_key":"order.add","object_keys":[{"id":0}]}`, Delivery{}, "positive"},
		{"float id", `{"event_key":"order.add","object_keys":[{"id":1.5}]}`, Delivery{}, "positive"},
		{"too many", `{"event_key":"order.add","object_keys":[` + strings.Repeat(`{"id":1},`, 1000) + `{"id":2}]}`, Delivery{}, "at most 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeDelivery([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// FuzzDecodeDelivery: hostile bodies never panic, and whatever decodes is within Keap's limits.
func FuzzDecodeDelivery(f *testing.F) {
	for _, s := range []string{`{"event_key":"contact.add","object_keys":[{"id":1}]}`, `{"event_key":"a.b","object_keys":[{"id":"9223372036854775807"}]}`, `{`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := DecodeDelivery(body)
		if err != nil {
			return
		}
		if len(d.IDs) > MaxObjectKeys || !eventKeyPattern.MatchString(d.EventKey) {
			t.Fatalf("accepted %+v", d)
		}
		for _, id := range d.IDs {
			if id <= 0 {
				t.Fatalf("accepted id %d", id)
			}
		}
	})
}
