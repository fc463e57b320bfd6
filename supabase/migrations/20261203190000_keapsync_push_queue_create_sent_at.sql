-- The push queue row keeps its create mark in a column of its own. Until now the time a create
-- was sent (so a retry looks for what it may have made before sending again) was written into
-- last_error as "create sent at <RFC 3339>[; <error>]" and parsed back; last_error now holds
-- only the error, and create_sent_at the mark.
alter table keapsync.push_queue add column if not exists create_sent_at timestamptz;

comment on column keapsync.push_queue.create_sent_at is
  'when a create for this record was sent to Keap without its answer being recorded yet (a retry first looks for what it may have made)';

-- Rows queued by an older sidecar: move the mark out of the message.
update keapsync.push_queue
   set create_sent_at = (substring(last_error from '^create sent at ([^;]+)'))::timestamptz,
       last_error = nullif(substring(last_error from '^create sent at [^;]+; (.*)$'), '')
 where last_error ~ '^create sent at [^;]+';
