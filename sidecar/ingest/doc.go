// Package ingest brings Keap's changes into Postgres: the REST Hook receiver writes deliveries to
// the inbox, workers turn inbox rows into fetches of the truth over the API and applies through
// the SQL apply functions, and backfill and reconcile sweep for everything hooks miss.
//
// The inbox is the durable queue. A delivery is acknowledged once its row commits; a worker
// claims due rows with FOR UPDATE SKIP LOCKED, coalesces their ids per account and object type,
// fetches and applies them, and marks the rows processed in the same transaction as the apply, so
// a killed worker leaves its rows pending for the next one and an apply is never half-recorded.
// A job queue such as River would add a second durable record of the same work (the job beside
// the inbox row) without adding safety: the inbox row already is the job.
package ingest
