package push

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Keap's contact lists keyed by `field` (EMAIL1-3, PHONE1-5, FAX1-2, BILLING/SHIPPING/OTHER).
// keapsync models only EMAIL1, PHONE1 and BILLING; the other columns are Keap's data we do not
// hold. Whether v1 PATCH replaces such a list whole (as v2 documents: "Any item not listed here
// will be removed") or merges it by field is undocumented (FACTS.md §7), so an update always
// sends the whole list: Keap's current items with ours put in their place. That is right under
// both answers, and never removes PHONE2 because we changed PHONE1.
var fieldLists = []string{"email_addresses", "phone_numbers", "fax_numbers", "addresses"}

// clearableStrings are the string properties a local clear is sent for as null. Whether Keap
// applies a null in PATCH or ignores it is undocumented (FACTS.md §7): when Keap's answer still
// holds a value, the clear is sent again as "" (see clearIgnored). Ids (owner_id,
// lead_source_id) have no empty form.
var clearableStrings = []string{"given_name", "middle_name", "family_name", "job_title"}

// hasFieldLists reports whether an update body names one of the field-keyed lists.
func hasFieldLists(body json.RawMessage) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	for _, k := range fieldLists {
		if _, ok := top[k]; ok {
			return true
		}
	}
	return false
}

// updateBody is the PATCH body to send for body: each field-keyed list completed with the items
// of current (Keap's contact as fetched just before) that body does not replace. current may be
// nil when body names no list.
func updateBody(body, current json.RawMessage) (json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("push: update body: %w", err)
	}
	var now map[string]json.RawMessage
	if len(current) > 0 {
		if err := json.Unmarshal(current, &now); err != nil {
			return nil, fmt.Errorf("push: Keap's contact: %w", err)
		}
	}
	for _, k := range fieldLists {
		ours, ok := top[k]
		if !ok {
			continue
		}
		merged, err := mergeByField(now[k], ours)
		if err != nil {
			return nil, fmt.Errorf("push: %s: %w", k, err)
		}
		top[k] = merged
	}
	return json.Marshal(top)
}

// mergeByField returns theirs with each of ours in place of the item with the same field, in
// Keap's order; ours that Keap does not hold yet follow.
func mergeByField(theirs, ours json.RawMessage) (json.RawMessage, error) {
	var have, want []map[string]any
	if len(theirs) > 0 && string(theirs) != "null" {
		if err := json.Unmarshal(theirs, &have); err != nil {
			return nil, fmt.Errorf("Keap's list: %w", err)
		}
	}
	if err := json.Unmarshal(ours, &want); err != nil {
		return nil, fmt.Errorf("our list: %w", err)
	}
	placed := make([]bool, len(want))
	out := make([]map[string]any, 0, len(have)+len(want))
	for _, it := range have {
		if i := slices.IndexFunc(want, func(w map[string]any) bool { return w["field"] == it["field"] }); i >= 0 {
			it, placed[i] = want[i], true
		}
		out = append(out, it)
	}
	for i, it := range want {
		if !placed[i] {
			out = append(out, it)
		}
	}
	return json.Marshal(out)
}

// clearedStrings are the clearable string properties body sends as null.
func clearedStrings(body json.RawMessage) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	var out []string
	for _, k := range clearableStrings {
		if v, ok := top[k]; ok && string(v) == "null" {
			out = append(out, k)
		}
	}
	return out
}

// stillSet are the properties of keys that Keap's answer holds a non-empty value for.
func stillSet(answer json.RawMessage, keys []string) []string {
	var got map[string]json.RawMessage
	if json.Unmarshal(answer, &got) != nil {
		return nil
	}
	var out []string
	for _, k := range keys {
		if v := string(got[k]); v != "" && v != "null" && v != `""` {
			out = append(out, k)
		}
	}
	return out
}

// withoutEmpty drops keys whose value is "" from Keap's answer: for Keap an empty string and an
// absent value both mean "not set", and absent is how the cleared value stays null here.
func withoutEmpty(answer json.RawMessage, keys []string) (json.RawMessage, error) {
	var got map[string]json.RawMessage
	if err := json.Unmarshal(answer, &got); err != nil {
		return nil, fmt.Errorf("push: Keap's answer: %w", err)
	}
	for _, k := range keys {
		if string(got[k]) == `""` {
			delete(got, k)
		}
	}
	return json.Marshal(got)
}
