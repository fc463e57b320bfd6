package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// fields is a contact as the checker compares it: doc key -> value, "" and absent alike.
type fields map[string]string

// keapContacts reads every contact of a sandbox snapshot, keyed by Keap id, with the fields the
// engine syncs: names, job title, the first email and phone by Keap's column order (EMAIL1,
// PHONE1: what keapsync.keap_columns_of reads), custom fields and tags.
func keapContacts(st sandbox.State) (map[int64]fields, map[int64][]string) {
	out := map[int64]fields{}
	allEmails := map[int64][]string{}
	for _, c := range st.Contacts {
		id := asInt64(c["id"])
		f := fields{}
		for _, k := range []string{"given_name", "family_name", "job_title"} {
			if s, ok := c[k].(string); ok && s != "" {
				f[k] = s
			}
		}
		for _, col := range [][3]string{{"email_addresses", "email", "email"}, {"phone_numbers", "number", "phone"}} {
			items := listOf(c[col[0]])
			sort.SliceStable(items, func(i, j int) bool { return fmt.Sprint(items[i]["field"]) < fmt.Sprint(items[j]["field"]) })
			for _, it := range items {
				if col[2] == "email" {
					allEmails[id] = append(allEmails[id], strings.ToLower(fmt.Sprint(it["email"])))
				}
			}
			if len(items) > 0 {
				if s := scalar(items[0][col[1]]); s != "" {
					f[col[2]] = s
				}
			}
		}
		for _, cf := range listOf(c["custom_fields"]) {
			if s := scalar(cf["content"]); s != "" {
				f["custom_fields."+scalar(cf["id"])] = s
			}
		}
		switch tags := c["tag_ids"].(type) {
		case []int64:
			for _, t := range tags {
				f["tag."+strconv.FormatInt(t, 10)] = "true"
			}
		case []any:
			for _, t := range tags {
				f["tag."+scalar(t)] = "true"
			}
		}
		out[id] = f
	}
	return out, allEmails
}

// pgContact is one keap.contacts row as the checker sees it.
type pgContact struct {
	localID int64
	keapID  int64 // 0 when never pushed
	f       fields
}

const sqlContacts = `
select c.id, coalesce(c.keap_id, 0), coalesce(c.given_name, ''), coalesce(c.family_name, ''),
       coalesce(c.job_title, ''), coalesce(c.email, ''), coalesce(c.phone, ''), c.custom_fields::text,
       array(select t.keap_id from keap.contact_tags ct join keap.tags t on t.id = ct.tag_id
              where ct.contact_id = c.id and t.keap_id is not null order by 1)
  from keap.contacts c where c.account_id = $1 order by c.id`

func (w *world) pgContacts(ctx context.Context) ([]pgContact, error) {
	rows, err := w.pool.Query(ctx, sqlContacts, w.account)
	if err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	defer rows.Close()
	var out []pgContact
	for rows.Next() {
		var c pgContact
		var given, family, job, email, phone, cfs string
		var tags []int64
		if err := rows.Scan(&c.localID, &c.keapID, &given, &family, &job, &email, &phone, &cfs, &tags); err != nil {
			return nil, fmt.Errorf("read contacts: %w", err)
		}
		c.f = fields{}
		for k, v := range map[string]string{"given_name": given, "family_name": family, "job_title": job, "email": email, "phone": phone} {
			if v != "" {
				c.f[k] = v
			}
		}
		dec := json.NewDecoder(strings.NewReader(cfs))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("contact %d custom fields: %w", c.localID, err)
		}
		for k, v := range m {
			if s := scalar(v); s != "" {
				c.f["custom_fields."+k] = s
			}
		}
		for _, t := range tags {
			c.f["tag."+strconv.FormatInt(t, 10)] = "true"
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	return out, nil
}

// orderFields are what the checker compares of an order: what both sides keep (the contact,
// title, type and date Keap stores as sent, and the totals and status Keap computes).
var orderFields = []string{"contact", "title", "order_type", "order_date", "status", "total", "total_paid", "total_due"}

// keapOrders reads every order of a sandbox snapshot, keyed by Keap id, normalised as pgOrders.
func keapOrders(st sandbox.State) map[int64]fields {
	out := map[int64]fields{}
	for _, o := range st.Orders {
		out[asInt64(o["id"])] = orderDoc(scalar(o["contact_id"]), scalar(o["title"]), scalar(o["order_type"]),
			scalar(o["order_date"]), scalar(o["status"]), scalar(o["total"]), scalar(o["total_paid"]), scalar(o["total_due"]))
	}
	return out
}

// orderDoc normalises an order's values (money to cents, times to UTC at full precision) so
// Keap's JSON and Postgres's columns compare equal; "" and absent alike.
func orderDoc(contact, title, typ, date, status, total, paid, due string) fields {
	f := fields{}
	money := func(s string) string {
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			return strconv.FormatFloat(v, 'f', 2, 64)
		}
		return s
	}
	if t, err := time.Parse(time.RFC3339Nano, date); err == nil {
		date = t.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range map[string]string{"contact": contact, "title": title, "order_type": typ, "order_date": date,
		"status": status, "total": money(total), "total_paid": money(paid), "total_due": money(due)} {
		if v != "" {
			f[k] = v
		}
	}
	return f
}

// pgOrder is one keap.orders row as the checker sees it.
type pgOrder struct {
	localID int64
	keapID  int64 // 0 when never pushed
	f       fields
}

const sqlOrders = `
select o.id, coalesce(o.keap_id, 0), coalesce(o.contact_keap_id::text, ''), coalesce(o.title, ''),
       coalesce(o.order_type, ''), coalesce(to_char(o.order_date at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), ''),
       coalesce(o.status, ''), coalesce(o.total::text, ''), coalesce(o.total_paid::text, ''), coalesce(o.total_due::text, '')
  from keap.orders o where o.account_id = $1 order by o.id`

func (w *world) pgOrders(ctx context.Context) ([]pgOrder, error) {
	rows, err := w.pool.Query(ctx, sqlOrders, w.account)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	defer rows.Close()
	var out []pgOrder
	for rows.Next() {
		var o pgOrder
		var contact, title, typ, date, status, total, paid, due string
		if err := rows.Scan(&o.localID, &o.keapID, &contact, &title, &typ, &date, &status, &total, &paid, &due); err != nil {
			return nil, fmt.Errorf("read orders: %w", err)
		}
		o.f = orderDoc(contact, title, typ, date, status, total, paid, due)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	return out, nil
}

// quiesce waits, within bound, until no hook delivery is queued in the sandbox, the inbox has no
// pending row and the push queue is empty, three polls in a row (a hook applied can enqueue a
// push that then settles; one quiet poll could fall between the two).
func (w *world) quiesce(ctx context.Context, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	quiet := 0
	var inbox, queue int
	for {
		w.sb.FlushHooks()
		hctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		hooksIdle := w.sb.WaitHooksIdle(hctx) == nil
		cancel()
		err := w.pool.QueryRow(ctx, sqlBacklog).Scan(&inbox, &queue)
		if err == nil && hooksIdle && inbox == 0 && queue == 0 {
			if quiet++; quiet >= 3 {
				return nil
			}
		} else {
			quiet = 0
		}
		if time.Now().After(deadline) {
			var why string
			_ = w.pool.QueryRow(ctx, `select coalesce(string_agg(format('%s %s: attempts %s, next %s, %s', object_type, local_id,
				attempts, next_attempt_at, coalesce(last_error, '-')), '; '), '') from (select * from keapsync.push_queue limit 5) q`).Scan(&why)
			diag := w.diagnose(ctx)
			return fmt.Errorf("not quiet after %s: hooks idle %v, inbox pending %d, push queue %d (%v) %s\n%s",
				bound, hooksIdle, inbox, queue, err, why, diag)
		}
		sleepCtx(ctx, 500*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func listOf(v any) []map[string]any {
	var out []map[string]any
	switch l := v.(type) {
	case []any:
		for _, it := range l {
			if m, ok := it.(map[string]any); ok {
				out = append(out, m)
			}
		}
	case []map[string]any:
		out = append(out, l...)
	}
	return out
}

// scalar renders a JSON-ish value the same way whichever decoder produced it.
func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func asInt64(v any) int64 {
	n, _ := strconv.ParseInt(scalar(v), 10, 64)
	return n
}

// diagnose describes what the database is doing, for a quiescence that never came: sessions,
// what blocks them, and the replication slot.
func (w *world) diagnose(ctx context.Context) string {
	rows, err := w.pool.Query(ctx, `select format('pid %s %s %s/%s xact %s blocked by %s: %s', pid, state,
		coalesce(wait_event_type, '-'), coalesce(wait_event, '-'), coalesce((now() - xact_start)::text, '-'),
		pg_blocking_pids(pid), left(regexp_replace(query, '\s+', ' ', 'g'), 160))
		  from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()
		union all
		select format('slot %s active %s pid %s confirmed %s', slot_name, active, active_pid, confirmed_flush_lsn)
		  from pg_replication_slots`)
	if err != nil {
		return "diagnose: " + err.Error()
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if rows.Scan(&l) == nil {
			lines = append(lines, "  "+l)
		}
	}
	return strings.Join(lines, "\n")
}
