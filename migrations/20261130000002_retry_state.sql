-- A retried job says why its last attempt failed and when the next is due
-- (issue #19): the worker shortens the message's visibility to a backoff
-- instead of waiting out the queue's visibility timeout.
alter table jobs
    add column last_error text,
    add column next_attempt_at timestamptz;
