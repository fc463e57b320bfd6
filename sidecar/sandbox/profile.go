package sandbox

import (
	"fmt"
	"sort"
	"strings"
)

// Profile chooses among behaviours Keap's documents leave open (or where our emulator used to
// share the client's assumptions). Each switch defaults to what the documents say; where they
// say nothing, the "hardest" profile picks the answer that is hardest for a sync client. The
// suites run under both, so keapsync must be right whichever Keap really does.
//
// Every field is named for the behaviour it turns on; the zero value is the documented profile.
type Profile struct {
	// OrdersOldestFirst lists GET /v1/orders oldest first. Keap documents "most recent at the
	// top", so the zero value (newest first) is the documented behaviour.
	OrdersOldestFirst bool
	// SecondStamps stamps last_updated / modification dates at whole seconds, so two edits in
	// one second share a stamp. Undocumented (FACTS §7).
	SecondStamps bool
	// TagsKeepStamp applies and removes tags without bumping the contact's last_updated.
	// Undocumented (FACTS §7).
	TagsKeepStamp bool
	// SinceExclusive makes `since` filters exclusive (strictly after). Undocumented.
	SinceExclusive bool
	// TagHookCarriesTagIDs makes contactGroup.applied/removed deliveries carry tag ids instead
	// of contact ids. Undocumented (FACTS §6).
	TagHookCarriesTagIDs bool
	// PatchMergesLists merges v1 PATCH /contacts email_addresses/phone_numbers/addresses by
	// `field` instead of replacing the whole list (v2 documents replacement).
	PatchMergesLists bool
	// NullIgnored makes PATCH ignore a JSON null instead of clearing the field.
	NullIgnored bool
	// PaymentKeepsOrderStamp takes payments without bumping the order's modification_date and
	// without order.edit: only invoice.payment.add tells. Undocumented (FACTS §7).
	PaymentKeepsOrderStamp bool
	// TagHookOmitsAPIURL sends contactGroup.applied/removed object keys without apiUrl (third
	// parties report it empty or missing), so a receiver cannot tell from the delivery whether
	// an id names a contact or a tag.
	TagHookOmitsAPIURL bool
	// TimeOrderIgnored lists v2 opportunities, subscriptions and products in id order when asked
	// to order them by update time (update_time, modification_time, last_updated_time): Keap
	// documents those order_by names, not that they sort by the record's clock.
	TimeOrderIgnored bool
	// NoteTimesInSeconds writes v2's note times (create_time, update_time) at whole seconds,
	// "2024-03-15T10:30:00Z" as swagger.yml's example, while v1's keep their milliseconds.
	// Undocumented (FACTS §7).
	NoteTimesInSeconds bool
	// NoteUserUnassigned leaves v2's assigned_to_user out of a note that has v1's user_id: v2
	// does not document that the two are the same user. Undocumented (FACTS §7).
	NoteUserUnassigned bool
}

// profiles are the named presets `keapsync sandbox --profile` and the test API accept.
var profiles = map[string]Profile{
	"documented": {},
	"hardest": {
		SecondStamps:         true,
		TagsKeepStamp:        true,
		SinceExclusive:       true,
		TagHookCarriesTagIDs: true,
		TagHookOmitsAPIURL:   true,
		NullIgnored:          true,
		TimeOrderIgnored:     true,
		NoteTimesInSeconds:   true,
		NoteUserUnassigned:   true,
		// Orders stay newest first: that is documented, and the documented default is what
		// keapsync must read; the oldest-first listing is a switch of its own.
		PaymentKeepsOrderStamp: true,
	},
}

// ProfileNames lists the named presets, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ParseProfile returns the named preset.
func ParseProfile(name string) (Profile, error) {
	p, ok := profiles[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Profile{}, fmt.Errorf("unknown sandbox profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// listOrder is the field and direction a v2 listing sorts by for its order_by field and dir:
// id order, ascending, when field is the listing's update time (clock) and
// Profile.TimeOrderIgnored is on.
func (s *store) listOrder(field, dir, clock string) (string, bool) {
	if field == clock && s.profile.get().TimeOrderIgnored {
		return "", false
	}
	return field, strings.EqualFold(dir, "desc")
}
