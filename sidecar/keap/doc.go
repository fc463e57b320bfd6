// Package keap is keapsync's client for Keap's REST API: every call to Keap goes through a
// Client, which spends a shared, rate-limited budget and retries what can be retried.
//
// # Calls and models
//
// The Client has typed calls for what the sync uses: contacts (list with filters and optional
// properties, get, create, PUT create-or-update by email, PATCH with update_mask, delete, the
// custom field model), tags and categories, tag application from either side, orders with items
// and payments, subscriptions (v1, and v2 where only v2 has modification_time and get-by-id) and
// REST hooks. Every model keeps Keap's JSON as received in Raw, because the database's apply
// functions take Keap's JSON as is (law 1); the typed fields are for Go code that routes work.
// Decoding is liberal, since real Keap is looser than its documents: ids as numbers or strings,
// timestamps with Z or +0000 and with or without milliseconds, amounts as strings, null for
// absent (see ID, Time, Number, Bool).
//
// Lists come one page at a time (ListContacts returns a Page with Keap's next link) or as
// iterators that follow next links (Contacts) or v2 page tokens (SubscriptionsV2). Incremental
// listing of contacts (ContactsSince) pages by timestamp instead of offset, where Keap documents
// an ascending order: a record changed during the walk is met again behind the cursor rather
// than shifting another record out of reach, and re-reading a second before the cursor keeps
// ties safe whether since is inclusive or not. Orders, which Keap lists newest first and whose
// since it does not define, are walked by overlapping offsets (OrdersSince). No walk assumes an
// order the documents do not promise. Next links are rebased onto Config.APIURL, so credentials
// never follow a link to another host.
//
// # Budgets (law 7: the budget is shared)
//
// Keap counts calls per OAuth client id (1500/min rolling, 25/s spikes, 150,000/day), per
// personal key (240/min, 10/s, 30,000/day) and per tenant (10,000/min, 250,000/day, all
// credentials together). A Budget is one of those counters on our side: a token bucket from
// golang.org/x/time/rate shared by every Client that draws on it. A Client waits on its tenant
// budget and then its app budget (client id or key) before each request: the tighter budget
// last, so its grant goes straight onto the wire. Create one Budget
// per Keap budget in the process and pass it to every Client concerned (Config.AppBudget,
// Config.TenantBudget); a Client without them gets private ones.
//
// A bucket of depth B and rate R grants at most B+60R calls in any minute and B+R in any
// second, so R is sized to keep both inside Keap's windows, less a 2% margin for jitter and
// for callers outside keapsync: (PerMinute·0.98 − B)/60, and at most PerSecond − B. For OAuth
// (B=1) that is 24 calls/s, 0.96 of the limit; for a key (B=2) 3.89/s, 0.97. It is then
// corrected by what Keap reports on every response:
//   - x-keap-product-throttle-limit / x-keap-tenant-throttle-limit (minute): a limit other than
//     the published one replaces it.
//   - throttle available falling under half the margin means someone else spends the window too:
//     the rate halves (at most once a second, down to 1/8) and creeps back by 5% per comfortable
//     response.
//   - quota (day) available at 0 pauses every call until x-keap-product-quota-expiry-time (or
//     00:00 UTC); under 1% of the quota left, Background calls pause and the rest is kept for
//     live sync.
//
// Calls are granted in priority order: all waiting Live calls (the default; hooks, push) before
// any Background call (backfill, reconcile; mark them with WithPriority). Only the head of the
// queue draws tokens, and it does not hold one while it sleeps, so a live call arriving behind
// a long backlog goes next.
//
// Several sidecar processes serving one account share the budget through Postgres: a
// BudgetShare heartbeats keapsync.rate_budget_share every 5 s and divides its Budget's rate by
// the number of live members, so two processes never each spend the full 1500/min. A member
// that dies stops counting after 15 s; a heartbeat that fails keeps the last share.
//
// # Retries
//
//   - 429 (Keap sends no Retry-After): always retried, since Keap refused before doing any work,
//     up to RetryPolicy.MaxThrottled times per call. The budget, not just the call, pauses for a
//     full-jitter exponential backoff and halves its rate: a 429 slows everyone.
//   - 5xx: retried with full-jitter exponential backoff (500 ms doubling, capped at 30 s) up to
//     RetryPolicy.MaxAttempts, when the call is idempotent. A create (POST) is retried only on
//     502/503/504, which gateways send when the application never saw the request; a 500 may
//     come after the record was written.
//   - Network errors: retried like 5xx, but only for idempotent calls (GET, PUT by email, PATCH,
//     DELETE, tag apply/remove, hook verify). A create is never resent blindly: it may have
//     reached Keap before the connection broke, and a second POST makes a second contact, order
//     or payment. The caller gets the error and decides (e.g. look the contact up by email).
//   - 401 saying the access token is invalid or expired: if the Credentials implement Refresher
//     (the OAuth token keeper does), Refresh once and send again once. A rejected personal key
//     or a refresh that fails is returned as is.
//   - Any other 4xx cannot succeed by repeating: it fails at once with an *APIError carrying
//     Keap's status, code and message (from the Apigee fault envelope, v2's {code,message,status}
//     or v1's {message}) and the raw body for the dead-letter table. errors.Is works with
//     ErrUnauthorized, ErrNotFound, ErrBadRequest, ErrRateLimited, ErrServer.
//   - A 2xx whose body is empty, null or does not decode is a *ResponseError (ErrBadResponse),
//     never a zero value that would pass for a record with id 0. In a list page only the item
//     that does not decode fails: the listing yields an *ItemError for it and goes on.
//
// Waits, backoffs and quota pauses read Config.Clock, so tests run a minute of throttling in
// microseconds. Metrics (Config.Registerer): keapsync_keap_requests_total by route template,
// method and status; keapsync_keap_retries_total by route and reason; request durations; and
// per budget the throttle and quota available and the current rate.
package keap
