package dashboard

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/httpguard"
)

// dataTable describes a browsable table. The table is aliased t and sort keys say t.id: a bare
// "id" in ORDER BY would name the output column id::text and sort 99 after 989. All SQL is assembled once, at init, from the constants
// below; a request only picks among the prepared variants and passes its input as parameters.
type dataTable struct {
	Name    string
	Title   string
	Headers []string
	sel     string // columns, each as text, id first
	from    string
	search  string // uses $2 (an ILIKE pattern, '' for none)
	// SearchHint names what search matches, shown in the empty search box.
	SearchHint string
	filter     string // uses $3 and $4
	Filters    [2]filterSpec
	Sorts      []sortSpec
	queries    map[string]string // sort+dir -> page query
	export     string
}

type filterSpec struct {
	Param, Label string
	Options      []string // nil: free text
}

type sortSpec struct {
	Key, Label string
	expr, cast string
}

var contactsTable = prepare(&dataTable{
	Name: "contacts", Title: "Contacts",
	Headers: []string{"ID", "Keap ID", "Given name", "Family name", "Email", "Company", "City", "Opted in", "Last updated"},
	sel: `id::text, coalesce(keap_id::text, ''), coalesce(given_name, ''), coalesce(family_name, ''),
       coalesce(email, ''), coalesce(company_name, ''), coalesce(locality, ''),
       case email_opted_in when true then 'yes' when false then 'no' else '' end,
       coalesce(to_char(last_updated at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), '')`,
	from:       `keap.contacts t`,
	search:     `($2 = '' or email ilike $2 or given_name ilike $2 or family_name ilike $2 or company_name ilike $2)`,
	SearchHint: "name, email, company…",
	filter:     `($3 = '' or company_name = $3) and ($4 = '' or email_opted_in = ($4 = 'yes'))`,
	Filters: [2]filterSpec{{Param: "company", Label: "Company"},
		{Param: "opted", Label: "Opted in", Options: []string{"yes", "no"}}},
	Sorts: []sortSpec{
		{Key: "id", Label: "ID", expr: `t.id`, cast: `bigint`},
		{Key: "name", Label: "Name", expr: `(coalesce(family_name, '') || ' ' || coalesce(given_name, ''))`, cast: `text`},
		{Key: "email", Label: "Email", expr: `coalesce(lower(email), '')`, cast: `text`},
		{Key: "updated", Label: "Last updated", expr: `coalesce(last_updated, '-infinity')`, cast: `timestamptz`},
	},
})

var ordersTable = prepare(&dataTable{
	Name: "orders", Title: "Orders",
	Headers: []string{"ID", "Keap ID", "Title", "Status", "Contact (Keap ID)", "Order date", "Total", "Paid", "Due"},
	sel: `id::text, coalesce(keap_id::text, ''), coalesce(title, ''), coalesce(status, ''),
       coalesce(contact_keap_id::text, ''),
       coalesce(to_char(order_date at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), ''),
       coalesce(total::text, ''), coalesce(total_paid::text, ''), coalesce(total_due::text, '')`,
	from:       `keap.orders t`,
	search:     `($2 = '' or title ilike $2)`,
	SearchHint: "title…",
	filter:     `($3 = '' or status = $3) and ($4 = '' or contact_keap_id::text = $4)`,
	Filters: [2]filterSpec{{Param: "status", Label: "Status", Options: []string{"PAID", "SENT", "DRAFT"}},
		{Param: "contact", Label: "Contact Keap ID"}},
	Sorts: []sortSpec{
		{Key: "date", Label: "Order date", expr: `coalesce(order_date, '-infinity')`, cast: `timestamptz`},
		{Key: "id", Label: "ID", expr: `t.id`, cast: `bigint`},
		{Key: "total", Label: "Total", expr: `coalesce(total, 0)`, cast: `numeric`},
	},
})

var companiesTable = prepare(&dataTable{
	Name: "companies", Title: "Companies",
	Headers: []string{"ID", "Keap ID", "Name", "Email", "Phone", "City", "Contacts", "Last updated"},
	sel: `id::text, coalesce(keap_id::text, ''), coalesce(company_name, ''), coalesce(email, ''),
       coalesce(phone, ''), coalesce(locality, ''),
       (select count(*) from keap.contacts c where c.account_id = t.account_id and c.company_keap_id = t.keap_id)::text,
       coalesce(to_char(update_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), '')`,
	from:       `keap.companies t`,
	search:     `($2 = '' or company_name ilike $2 or email ilike $2)`,
	SearchHint: "name, email…",
	filter:     `($3 = '' or locality = $3) and ($4 = '' or region = $4)`,
	Filters:    [2]filterSpec{{Param: "city", Label: "City"}, {Param: "region", Label: "Region"}},
	Sorts: []sortSpec{
		{Key: "name", Label: "Name", expr: `coalesce(lower(company_name), '')`, cast: `text`},
		{Key: "id", Label: "ID", expr: `t.id`, cast: `bigint`},
		{Key: "updated", Label: "Last updated", expr: `coalesce(update_time, '-infinity')`, cast: `timestamptz`},
	},
})

var opportunitiesTable = prepare(&dataTable{
	Name: "opportunities", Title: "Opportunities",
	Headers: []string{"ID", "Keap ID", "Title", "Stage", "Outcome", "Contact (Keap ID)", "Value", "Est. close", "Last updated"},
	sel: `id::text, coalesce(keap_id::text, ''), coalesce(title, ''),
       coalesce((select s.name from keap.opportunity_stages s where s.account_id = t.account_id and s.keap_id = t.stage_keap_id),
                stage_keap_id::text, ''),
       coalesce((select s.outcome from keap.opportunity_stages s where s.account_id = t.account_id and s.keap_id = t.stage_keap_id), 'open'),
       coalesce(contact_keap_id::text, ''), coalesce(coalesce(projected_revenue_high, projected_revenue_low)::text, ''),
       coalesce(to_char(estimated_close_time at time zone 'UTC', 'YYYY-MM-DD'), ''),
       coalesce(to_char(last_updated_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), '')`,
	from:       `keap.opportunities t`,
	search:     `($2 = '' or title ilike $2)`,
	SearchHint: "title…",
	filter: `($3 = '' or exists (select 1 from keap.opportunity_stages s where s.account_id = t.account_id
	                                and s.keap_id = t.stage_keap_id and s.name = $3))
	     and ($4 = '' or coalesce((select s.outcome from keap.opportunity_stages s
	                                where s.account_id = t.account_id and s.keap_id = t.stage_keap_id), 'open') = $4)`,
	Filters: [2]filterSpec{{Param: "stage", Label: "Stage"},
		{Param: "outcome", Label: "Outcome", Options: []string{"open", "won", "lost"}}},
	Sorts: []sortSpec{
		{Key: "updated", Label: "Last updated", expr: `coalesce(last_updated_time, '-infinity')`, cast: `timestamptz`},
		{Key: "value", Label: "Value", expr: `coalesce(projected_revenue_high, projected_revenue_low, 0)`, cast: `numeric`},
		{Key: "close", Label: "Est. close", expr: `coalesce(estimated_close_time, '-infinity')`, cast: `timestamptz`},
		{Key: "id", Label: "ID", expr: `t.id`, cast: `bigint`},
	},
})

var productsTable = prepare(&dataTable{
	Name: "products", Title: "Products",
	Headers: []string{"ID", "Keap ID", "Name", "SKU", "Price", "Currency", "Active", "Last updated"},
	sel: `id::text, coalesce(keap_id::text, ''), coalesce(name, ''), coalesce(sku, ''),
       coalesce((price_cents / 100.0)::numeric(20, 2)::text, ''), coalesce(currency_code, ''),
       case active when true then 'yes' when false then 'no' else '' end,
       coalesce(to_char(update_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), '')`,
	from:       `keap.products t`,
	search:     `($2 = '' or name ilike $2 or sku ilike $2 or short_description ilike $2)`,
	SearchHint: "name, SKU, description…",
	filter:     `($3 = '' or active = ($3 = 'yes')) and ($4 = '' or currency_code = $4)`,
	Filters: [2]filterSpec{{Param: "active", Label: "Active", Options: []string{"yes", "no"}},
		{Param: "currency", Label: "Currency"}},
	Sorts: []sortSpec{
		{Key: "name", Label: "Name", expr: `coalesce(lower(name), '')`, cast: `text`},
		{Key: "id", Label: "ID", expr: `t.id`, cast: `bigint`},
		{Key: "price", Label: "Price", expr: `coalesce(price_cents, -1)`, cast: `bigint`},
		{Key: "updated", Label: "Last updated", expr: `coalesce(update_time, '-infinity')`, cast: `timestamptz`},
	},
})

var tasksTable = prepare(&dataTable{
	Name: "tasks", Title: "Tasks",
	Headers: []string{"ID", "Keap ID", "Title", "Type", "Priority", "Contact (Keap ID)", "Due", "Completed", "Last updated"},
	sel: `id::text, coalesce(keap_id::text, ''), coalesce(title, ''), coalesce(type, ''), coalesce(priority, ''),
       coalesce(contact_keap_id::text, ''),
       coalesce(to_char(due_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), ''),
       case completed when true then 'yes' when false then 'no' else '' end,
       coalesce(to_char(modification_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), '')`,
	from:       `keap.tasks t`,
	search:     `($2 = '' or title ilike $2 or description ilike $2)`,
	SearchHint: "title, description…",
	filter:     `($3 = '' or completed = ($3 = 'yes')) and ($4 = '' or contact_keap_id::text = $4)`,
	Filters: [2]filterSpec{{Param: "completed", Label: "Completed", Options: []string{"yes", "no"}},
		{Param: "contact", Label: "Contact Keap ID"}},
	Sorts: []sortSpec{
		{Key: "due", Label: "Due", expr: `coalesce(due_time, '-infinity')`, cast: `timestamptz`},
		{Key: "id", Label: "ID", expr: `t.id`, cast: `bigint`},
		{Key: "title", Label: "Title", expr: `coalesce(lower(title), '')`, cast: `text`},
		{Key: "updated", Label: "Last updated", expr: `coalesce(modification_time, '-infinity')`, cast: `timestamptz`},
	},
})

var notesTable = prepare(&dataTable{
	Name: "notes", Title: "Notes",
	Headers: []string{"ID", "Keap ID", "Title", "Type", "Contact (Keap ID)", "Body", "Last updated"},
	sel: `id::text, coalesce(keap_id::text, ''), coalesce(title, ''), coalesce(type, ''), coalesce(contact_keap_id::text, ''),
       coalesce(left(body, 120), ''), coalesce(to_char(last_updated at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), '')`,
	from:       `keap.notes t`,
	search:     `($2 = '' or title ilike $2 or body ilike $2)`,
	SearchHint: "title, body…",
	filter:     `($3 = '' or type = $3) and ($4 = '' or contact_keap_id::text = $4)`,
	Filters:    [2]filterSpec{{Param: "type", Label: "Type"}, {Param: "contact", Label: "Contact Keap ID"}},
	Sorts: []sortSpec{
		{Key: "updated", Label: "Last updated", expr: `coalesce(last_updated, '-infinity')`, cast: `timestamptz`},
		{Key: "id", Label: "ID", expr: `t.id`, cast: `bigint`},
		{Key: "title", Label: "Title", expr: `coalesce(lower(title), '')`, cast: `text`},
	},
})

var subscriptionsTable = prepare(&dataTable{
	Name: "subscriptions", Title: "Subscriptions",
	Headers: []string{"ID", "Keap ID", "Contact (Keap ID)", "Product (Keap ID)", "Amount", "Cycle", "Active", "Next bill", "Last updated"},
	sel: `id::text, coalesce(keap_id::text, ''), coalesce(contact_keap_id::text, ''), coalesce(product_id::text, ''),
       coalesce(billing_amount::text, ''), coalesce(billing_frequency::text || ' × ' || billing_cycle, billing_cycle, ''),
       case active when true then 'yes' when false then 'no' else '' end,
       coalesce(to_char(next_bill_date, 'YYYY-MM-DD'), ''),
       coalesce(to_char(modification_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI'), '')`,
	from:       `keap.subscriptions t`,
	search:     `($2 = '' or billing_cycle ilike $2)`,
	SearchHint: "billing cycle (MONTH, YEAR…)",
	filter:     `($3 = '' or active = ($3 = 'yes')) and ($4 = '' or contact_keap_id::text = $4)`,
	Filters: [2]filterSpec{{Param: "active", Label: "Active", Options: []string{"yes", "no"}},
		{Param: "contact", Label: "Contact Keap ID"}},
	Sorts: []sortSpec{
		{Key: "next", Label: "Next bill", expr: `coalesce(next_bill_date, '-infinity')`, cast: `date`},
		{Key: "id", Label: "ID", expr: `t.id`, cast: `bigint`},
		{Key: "amount", Label: "Amount", expr: `coalesce(billing_amount, -1)`, cast: `numeric`},
		{Key: "updated", Label: "Last updated", expr: `coalesce(modification_time, '-infinity')`, cast: `timestamptz`},
	},
})

// dataTables are the Data page's tabs, in the order shown; each is served at /data/<name> and
// /data/<name>.csv. Every synced type has one, or is shown within another's
// (TestEveryObjectTypeIsBrowsable).
var dataTables = []*dataTable{contactsTable, ordersTable, subscriptionsTable, companiesTable, productsTable, tasksTable, notesTable, opportunitiesTable}

func prepare(t *dataTable) *dataTable {
	t.queries = map[string]string{}
	where := ` where account_id = $1 and ` + t.search + ` and ` + t.filter
	for _, s := range t.Sorts {
		for _, dir := range []string{"asc", "desc"} {
			cmp := ">"
			if dir == "desc" {
				cmp = "<"
			}
			t.queries[s.Key+" "+dir] = `select ` + t.sel + `, (` + s.expr + `)::text from ` + t.from + where +
				` and ($5::text is null or (` + s.expr + `, t.id) ` + cmp + ` ($5::` + s.cast + `, $6::bigint))` +
				` order by ` + s.expr + ` ` + dir + `, t.id ` + dir + ` limit $7`
		}
	}
	t.export = `select ` + t.sel + ` from ` + t.from + where + ` order by t.id`
	return t
}

type dataView struct {
	Table   *dataTable
	Tabs    []*dataTable
	Q       string
	F       [2]string
	Sort    string
	Dir     string
	Rows    [][]string
	Next    template.URL // query string of the next page, "" on the last
	IsFirst bool
	Export  template.URL // query string of the same filters (CSV, first page)
}

// params reads the table's filters from the URL; unknown sort keys fall back to the first.
func (t *dataTable) params(q url.Values) (dv dataView, args []any) {
	dv = dataView{Table: t, Tabs: dataTables, Q: strings.TrimSpace(q.Get("q")), Sort: t.Sorts[0].Key, Dir: q.Get("dir")}
	for _, s := range t.Sorts {
		if s.Key == q.Get("sort") {
			dv.Sort = s.Key
		}
	}
	if dv.Dir != "asc" {
		dv.Dir = "desc"
	}
	pattern := ""
	if dv.Q != "" {
		pattern = "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(dv.Q) + "%"
	}
	for i, f := range t.Filters {
		dv.F[i] = strings.TrimSpace(q.Get(f.Param))
	}
	return dv, []any{pattern, dv.F[0], dv.F[1]}
}

func (s *Server) dataPage(t *dataTable) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, u *user) error {
		v := &view{Title: t.Title, Nav: "data", User: u, CSRF: u.CSRF}
		q := r.URL.Query()
		dv, args := t.params(q)
		var after *string
		var afterID int64
		if c := q.Get("after"); c != "" {
			key, id, ok := decodeCursor(c)
			if !ok {
				return &pageError{Status: 400, Code: "bad_cursor", Msg: "That page link is broken. Start from the first page."}
			}
			after, afterID = &key, id
		}
		dv.IsFirst = after == nil
		err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
			if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
				return err
			}
			all := append([]any{v.Account.ID}, args...)
			all = append(all, after, afterID, s.cfg.PageSize+1)
			rows, err := tx.Query(r.Context(), t.queries[dv.Sort+" "+dv.Dir], all...)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]string, error) {
				vals := make([]string, len(t.Headers)+1)
				ptrs := make([]any, len(vals))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				return vals, row.Scan(ptrs...)
			})
			if err != nil {
				return err
			}
			if len(got) > s.cfg.PageSize {
				last := got[s.cfg.PageSize-1]
				nq := cloneValues(q)
				nq.Set("after", encodeCursor(last[len(last)-1], last[0]))
				nq.Del("fragment")
				dv.Next = template.URL(nq.Encode()) // built by url.Values: safe in an href
				got = got[:s.cfg.PageSize]
			}
			for i := range got {
				got[i] = got[i][:len(t.Headers)]
			}
			dv.Rows = got
			return nil
		})
		if err != nil {
			return err
		}
		eq := cloneValues(q)
		eq.Del("after")
		eq.Del("fragment")
		if v.Account != nil {
			eq.Set("account", v.Account.ID)
		}
		dv.Export = template.URL(eq.Encode())
		v.Data = &dv
		return s.render(w, r, http.StatusOK, "data", v)
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func encodeCursor(key, id string) string {
	b, _ := json.Marshal([]string{key, id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c string) (key string, id int64, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", 0, false
	}
	var parts []string
	if json.Unmarshal(b, &parts) != nil || len(parts) != 2 {
		return "", 0, false
	}
	var n json.Number = json.Number(parts[1])
	id, err = n.Int64()
	return parts[0], id, err == nil
}

// exportTime bounds an export, its query and its writing alike.
const exportTime = 10 * time.Minute

// exportCSV streams the filtered table: rows go from the database cursor to the response as
// they arrive, so a million rows never sit in memory.
func (s *Server) exportCSV(t *dataTable) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, u *user) error {
		q := r.URL.Query()
		_, args := t.params(q)
		started := false
		err := s.asUser(r.Context(), u, exportTime, func(tx pgx.Tx) error {
			v := &view{}
			if err := s.loadAccounts(r, tx, v); err != nil {
				return err
			}
			if v.Account == nil {
				return &pageError{Status: 404, Code: "no_account", Msg: "You are not a member of any account yet."}
			}
			rows, err := tx.Query(r.Context(), t.export, append([]any{v.Account.ID}, args...)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			// A big export may take as long as its query may, past the server's timeouts.
			if err := httpguard.Stream(w, exportTime); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+t.Name+`.csv"`)
			w.Header().Set("Cache-Control", "no-store")
			started = true
			cw := csv.NewWriter(w)
			if err := cw.Write(t.Headers); err != nil {
				return err
			}
			fl, _ := w.(http.Flusher)
			vals := make([]string, len(t.Headers))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for n := 1; rows.Next(); n++ {
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				for i, c := range vals {
					vals[i] = defuseFormula(c)
				}
				if err := cw.Write(vals); err != nil {
					return err
				}
				if n%1000 == 0 {
					cw.Flush()
					if fl != nil {
						fl.Flush()
					}
				}
			}
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
			return rows.Err()
		})
		if err != nil && started {
			// Headers are gone; all we can do is stop. The truncated file has no final newline
			// row count to trust, and the log says why.
			s.log.Error("csv export cut short", "table", t.Name, "err", err)
			return nil
		}
		return err
	}
}

// negativeNumber is a cell a spreadsheet reads as a number, not a formula.
var negativeNumber = regexp.MustCompile(`^-[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// defuseFormula stops spreadsheet apps from running a cell as a formula (CSV injection) by
// prefixing a quote. A leading minus starts a formula too (`-2+3+cmd|' /C calc'!A0`), so text
// starting with one is prefixed; a cell that is a plain number keeps its minus.
func defuseFormula(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '@', '\t', '\r':
		return "'" + s
	case '-':
		if !negativeNumber.MatchString(s) {
			return "'" + s
		}
	}
	return s
}
