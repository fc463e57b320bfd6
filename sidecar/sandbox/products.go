package sandbox

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// v2 renders [V2]'s RestV2Product: the id is a string, the price an amount in cents.
func (p *product) v2() map[string]any {
	out := map[string]any{
		"id": strconv.FormatInt(p.ID, 10), "name": p.Name, "sku": p.SKU, "active": !p.inactive,
		"price": map[string]any{"amount": int64(math.Round(p.Price * 100)), "currency_code": "USD",
			"formatted_amount": fmt.Sprintf("$%.2f", p.Price)},
		"create_time": keapTime(p.created), "update_time": keapTime(p.updated),
	}
	if p.Description != "" {
		out["description"] = p.Description
	}
	if p.short != "" {
		out["short_description"] = p.short
	}
	return out
}

// productInput is [V2]'s CreateProductRequest / UpdateProductRequest, as far as the sandbox keeps it.
type productInput struct {
	Name        *string `json:"name"`
	SKU         *string `json:"sku"`
	Description *string `json:"description"`
	Short       *string `json:"short_description"`
	Active      *bool   `json:"active"`
	Price       *int64  `json:"price"` // cents
}

func (in productInput) apply(p *product, mask []string) {
	set := maskedSetter(mask)
	if set("name", in.Name != nil) {
		p.Name = deref(in.Name)
	}
	if set("sku", in.SKU != nil) {
		p.SKU = deref(in.SKU)
	}
	if set("description", in.Description != nil) {
		p.Description = deref(in.Description)
	}
	if set("short_description", in.Short != nil) {
		p.short = deref(in.Short)
	}
	if set("active", in.Active != nil) {
		p.inactive = in.Active != nil && !*in.Active
	}
	if set("price", in.Price != nil) && in.Price != nil {
		p.Price = float64(*in.Price) / 100
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func productEvent(key string, p *product) event {
	return event{key: key, objectType: "product", id: p.ID, apiPath: fmt.Sprintf("/v2/products/%d", p.ID), at: p.updated}
}

func (s *store) createProduct(in productInput) (*product, error) {
	var out *product
	err := s.write(func() ([]event, error) {
		if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
			return nil, v2Error(http.StatusBadRequest, "name is required")
		}
		now := s.stamp.next()
		p := &product{ID: s.nextID("product"), created: now, updated: now}
		in.apply(p, nil)
		s.products[p.ID] = p
		out = p
		return []event{productEvent("product.add", p)}, nil
	})
	return out, err
}

func (s *store) updateProduct(id int64, in productInput, mask []string) (*product, error) {
	var out *product
	err := s.write(func() ([]event, error) {
		p := s.products[id]
		if p == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Product with ID %d not found", id))
		}
		in.apply(p, mask)
		p.updated = s.stamp.next()
		out = p
		return []event{productEvent("product.edit", p)}, nil
	})
	return out, err
}

func (s *store) deleteProduct(id int64) error {
	return s.write(func() ([]event, error) {
		p := s.products[id]
		if p == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Product with ID %d not found", id))
		}
		delete(s.products, id)
		p.updated = s.stamp.next()
		return []event{productEvent("product.delete", p)}, nil
	})
}

// listProductsV2 serves page_size/page_token paging, filter=product_ids==1,2,3 and
// order_by=name|sku|last_updated_time [asc|desc] (id order by default). [V2] offers no filter by
// time.
func (a *restAPI) listProductsV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	ids, err := idsFilter(q.Get("filter"), "product_ids")
	if err != nil {
		return err
	}
	field, dir, _ := strings.Cut(q.Get("order_by"), " ")
	if field != "" && field != "name" && field != "sku" && field != "last_updated_time" {
		return badRequest("Invalid order_by: " + q.Get("order_by"))
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	all := make([]*product, 0, len(a.store.products))
	for _, p := range a.store.products {
		if ids == nil || ids[p.ID] {
			all = append(all, p)
		}
	}
	field, desc := a.store.listOrder(field, dir, "last_updated_time")
	sort.Slice(all, func(i, j int) bool {
		x, y := all[i], all[j]
		switch {
		case field == "name" && x.Name != y.Name:
			return (x.Name < y.Name) != desc
		case field == "sku" && x.SKU != y.SKU:
			return (x.SKU < y.SKU) != desc
		case field == "last_updated_time" && !x.updated.Equal(y.updated):
			return x.updated.Before(y.updated) != desc
		}
		return (x.ID < y.ID) != desc
	})
	writeV2Page(w, "products", all, size, offset, (*product).v2)
	return nil
}

// idsFilter reads a listing's filter by a list of ids, name==1,2,3 (products: product_ids;
// nil: no filter). The sandbox refuses the collection's other filters, which keapsync does not
// send.
func idsFilter(f, name string) (map[int64]bool, error) {
	if f == "" {
		return nil, nil
	}
	list, ok := strings.CutPrefix(f, name+"==")
	if !ok {
		return nil, badRequest("Invalid filter: " + f)
	}
	ids, err := idSet(list)
	if err != nil {
		return nil, badRequest("Invalid filter: " + f)
	}
	return ids, nil
}

func (a *restAPI) getProductV2(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	p := a.store.products[id]
	if p == nil {
		return v2Error(http.StatusNotFound, fmt.Sprintf("Product with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, p.v2())
	return nil
}

func (a *restAPI) createProductV2(w http.ResponseWriter, r *http.Request) error {
	return v2Create(a, w, r, a.store.createProduct)
}

func (a *restAPI) patchProductV2(w http.ResponseWriter, r *http.Request) error {
	return v2Patch(a, w, r, a.store.updateProduct)
}

func (a *restAPI) deleteProductV2(w http.ResponseWriter, r *http.Request) error {
	return v2Delete(w, r, a.store.deleteProduct)
}
