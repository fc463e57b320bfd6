package sandbox

import (
	"net/http"
	"slices"
	"strings"
)

// v2Record is a record of a v2 collection the sandbox serves (companies, products, tasks).
type v2Record interface{ v2() map[string]any }

// The write handlers every simple collection shares: POST creates (201 and the record), PATCH
// updates the fields its update_mask names, or without one those the body holds (200 and the
// record), DELETE removes (204). v2's collections and v1's notes answer alike. The store does the
// work; the record is rendered under the read lock, as the list handlers do.

func v2Create[In any, R v2Record](a *restAPI, w http.ResponseWriter, r *http.Request, create func(In) (R, error)) error {
	return createAndRender(a, w, r, create, R.v2)
}

func v2Patch[In any, R v2Record](a *restAPI, w http.ResponseWriter, r *http.Request, update func(int64, In, []string) (R, error)) error {
	return patchAndRender(a, w, r, update, R.v2)
}

func createAndRender[In, R any](a *restAPI, w http.ResponseWriter, r *http.Request, create func(In) (R, error), render func(R) map[string]any) error {
	var in In
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	rec, err := create(in)
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	writeJSON(w, http.StatusCreated, render(rec))
	return nil
}

func patchAndRender[In, R any](a *restAPI, w http.ResponseWriter, r *http.Request, update func(int64, In, []string) (R, error), render func(R) map[string]any) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in In
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	var mask []string
	for _, m := range r.URL.Query()["update_mask"] {
		mask = append(mask, strings.Split(m, ",")...)
	}
	rec, err := update(id, in, mask)
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	writeJSON(w, http.StatusOK, render(rec))
	return nil
}

func v2Delete(w http.ResponseWriter, r *http.Request, remove func(int64) error) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := remove(id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// maskedSetter says whether an input sets a property: with an update_mask, exactly the masked
// ones (an absent one clears); without, those present.
func maskedSetter(mask []string) func(prop string, present bool) bool {
	return func(prop string, present bool) bool {
		if len(mask) > 0 {
			return slices.Contains(mask, prop)
		}
		return present
	}
}
