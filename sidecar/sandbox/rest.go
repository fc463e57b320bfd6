package sandbox

import (
	"bytes"
	"io"
	"net/http"

	"github.com/keapsync/keapsync/sidecar/sandbox/keapspec"
)

// restAPI serves Keap's REST paths from the store. Authentication, throttling and faults are
// applied before it (gateway.go), as Keap's gateway does.
type restAPI struct {
	store     *store
	hooks     *hookService
	validator *keapspec.Validator
	baseURL   func() string // scheme://host of this server, for absolute next/previous URLs
}

// routes registers every Keap operation the sandbox serves and returns their patterns.
func (a *restAPI) routes(mux *http.ServeMux) []string {
	const v1 = "/crm/rest/v1"
	var patterns []string
	h := func(pattern string, fn handlerFunc) {
		mux.Handle(pattern, handle(a.checked(fn)))
		patterns = append(patterns, pattern)
	}
	h("GET "+v1+"/contacts", a.listContacts)
	h("POST "+v1+"/contacts", a.createContact)
	h("PUT "+v1+"/contacts", a.upsertContact)
	h("GET "+v1+"/contacts/model", a.contactModel)
	h("POST "+v1+"/contacts/model/customFields", a.createCustomField)
	h("GET "+v1+"/contacts/{id}", a.getContact)
	h("PATCH "+v1+"/contacts/{id}", a.patchContact)
	h("DELETE "+v1+"/contacts/{id}", a.deleteContact)
	h("GET "+v1+"/contacts/{id}/tags", a.listContactTags)
	h("POST "+v1+"/contacts/{id}/tags", a.applyTagsToContact)
	h("DELETE "+v1+"/contacts/{id}/tags", a.removeListed(false))
	h("DELETE "+v1+"/contacts/{id}/tags/{tagId}", a.removeOne("tagId", false))
	h("GET "+v1+"/tags", a.listTags)
	h("POST "+v1+"/tags", a.createTag)
	h("POST "+v1+"/tags/categories", a.createCategory)
	h("GET "+v1+"/tags/{id}", a.getTag)
	h("GET "+v1+"/tags/{id}/contacts", a.listTaggedContacts)
	h("POST "+v1+"/tags/{id}/contacts", a.applyTagToContacts)
	h("DELETE "+v1+"/tags/{id}/contacts", a.removeListed(true))
	h("DELETE "+v1+"/tags/{id}/contacts/{contactId}", a.removeOne("contactId", true))
	h("GET "+v1+"/orders", a.listOrders)
	h("POST "+v1+"/orders", a.createOrder)
	h("GET "+v1+"/orders/{id}", a.getOrder)
	h("DELETE "+v1+"/orders/{id}", a.deleteOrder)
	h("POST "+v1+"/orders/{id}/items", a.addOrderItem)
	h("DELETE "+v1+"/orders/{id}/items/{itemId}", a.deleteOrderItem)
	h("GET "+v1+"/orders/{id}/payments", a.listPayments)
	h("POST "+v1+"/orders/{id}/payments", a.createPayment)
	// Many orders' payments in one call (v1 lists one order's): filter=order_ids==1,2,3.
	h("GET /crm/rest/v2/sales/payments", a.listPaymentsV2)
	h("GET "+v1+"/subscriptions", a.listSubscriptions)
	h("POST "+v1+"/subscriptions", a.createSubscription)
	h("GET "+v1+"/hooks/event_keys", a.listEventKeys)
	h("GET "+v1+"/hooks", a.listHooks)
	h("POST "+v1+"/hooks", a.createHook)
	h("GET "+v1+"/hooks/{key}", a.getHook)
	h("PUT "+v1+"/hooks/{key}", a.updateHook)
	h("DELETE "+v1+"/hooks/{key}", a.deleteHook)
	h("POST "+v1+"/hooks/{key}/verify", a.verifyHook)
	h("POST "+v1+"/hooks/{key}/delayedVerify", a.delayedVerifyHook)
	h("GET "+v1+"/oauth/connect/userinfo", a.userInfo)
	// v2 only where v1 has no way: a subscription's modification_time and get-by-id.
	h("GET /crm/rest/v2/subscriptions", a.listSubscriptionsV2)
	h("GET /crm/rest/v2/subscriptions/{id}", a.getSubscriptionV2)
	// Companies through v2: v1's carry no timestamps and cannot be deleted.
	h("GET /crm/rest/v2/companies", a.listCompaniesV2)
	h("POST /crm/rest/v2/companies", a.createCompanyV2)
	h("GET /crm/rest/v2/companies/{id}", a.getCompanyV2)
	h("PATCH /crm/rest/v2/companies/{id}", a.patchCompanyV2)
	h("DELETE /crm/rest/v2/companies/{id}", a.deleteCompanyV2)
	// Custom-field models of the v2 types whose records carry custom fields.
	h("GET /crm/rest/v2/companies/model", a.v2ModelOf(recordCompany))
	h("GET /crm/rest/v2/tasks/model", a.v2ModelOf(recordTask))
	h("GET /crm/rest/v2/opportunities/model", a.v2ModelOf(recordOpportunity))
	h("GET /crm/rest/v2/subscriptions/model", a.v2ModelOf(recordSubscription))
	// Products through v2: the catalogue with timestamps.
	h("GET /crm/rest/v2/products", a.listProductsV2)
	h("POST /crm/rest/v2/products", a.createProductV2)
	h("GET /crm/rest/v2/products/{id}", a.getProductV2)
	h("PATCH /crm/rest/v2/products/{id}", a.patchProductV2)
	h("DELETE /crm/rest/v2/products/{id}", a.deleteProductV2)
	// Tasks through v2 (modification_time is their clock).
	h("GET /crm/rest/v2/tasks", a.listTasksV2)
	h("POST /crm/rest/v2/tasks", a.createTaskV2)
	h("GET /crm/rest/v2/tasks/{id}", a.getTaskV2)
	h("PATCH /crm/rest/v2/tasks/{id}", a.patchTaskV2)
	h("DELETE /crm/rest/v2/tasks/{id}", a.deleteTaskV2)
	// Opportunities and their pipeline stages through v2 (last_updated_time and updated_time
	// are their clocks; neither listing filters by them).
	h("GET /crm/rest/v2/opportunities", a.listOpportunitiesV2)
	h("POST /crm/rest/v2/opportunities", a.createOpportunityV2)
	h("GET /crm/rest/v2/opportunities/{id}", a.getOpportunityV2)
	h("PATCH /crm/rest/v2/opportunities/{id}", a.patchOpportunityV2)
	h("DELETE /crm/rest/v2/opportunities/{id}", a.deleteOpportunityV2)
	h("GET /crm/rest/v2/opportunities/stages", a.listStagesV2)
	h("POST /crm/rest/v2/opportunities/stages", a.createStageV2)
	h("GET /crm/rest/v2/opportunities/stages/{id}", a.getStageV2)
	h("PATCH /crm/rest/v2/opportunities/stages/{id}", a.patchStageV2)
	h("DELETE /crm/rest/v2/opportunities/stages/{id}", a.deleteStageV2)
	// Notes through v1 (keapsync reads and writes them there; their custom fields through v2, below).
	h("GET "+v1+"/notes", a.listNotes)
	h("POST "+v1+"/notes", a.createNoteV1)
	h("GET "+v1+"/notes/{id}", a.getNote)
	h("PATCH "+v1+"/notes/{id}", a.patchNoteV1)
	h("DELETE "+v1+"/notes/{id}", a.deleteNoteV1)
	// Notes' and orders' custom fields, which only v2 carries: read by id or update time,
	// written alone, and their models (notes share the tasks' fields, as Keap documents).
	h("GET /crm/rest/v2/notes", a.listNotesV2)
	// Tags by id, which v1 cannot list, and their categories, which v2's tag names by id alone.
	h("GET /crm/rest/v2/tags", a.listTagsV2)
	h("GET /crm/rest/v2/tags/categories", a.listTagCategoriesV2)
	h("GET /crm/rest/v2/notes/model", a.v2ModelOf(recordTask))
	h("PATCH /crm/rest/v2/contacts/{contact_id}/notes/{id}", a.patchNoteV2)
	h("GET /crm/rest/v2/orders", a.listOrdersV2)
	h("GET /crm/rest/v2/orders/model", a.v2ModelOf(recordOrder))
	h("PATCH /crm/rest/v2/orders/{id}", a.patchOrderV2)
	mux.Handle("/crm/rest/", handle(func(w http.ResponseWriter, r *http.Request) error {
		return routeNotFound(r)
	}))
	return patterns
}

// checked validates a request body against Keap's document before the handler runs, so the
// sandbox refuses what Keap's deserializer refuses, with Keap's message.
func (a *restAPI) checked(fn handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Body != nil && r.ContentLength != 0 && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
			if err != nil {
				return badRequest("Input could not be converted to a valid request")
			}
			if err := a.validator.ValidateBody(r.Context(), r, body); err != nil {
				return badRequest("Input could not be converted to a valid request")
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		return fn(w, r)
	}
}

func (a *restAPI) userInfo(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"sub": "1", "global_user_id": 1, "infusionsoft_id": a.store.tenant,
		"email": "owner@sandbox.invalid", "given_name": "Sandbox", "family_name": "Owner", "is_admin": true,
	})
	return nil
}
