-- A row is marked when its enqueue failed, instead of when it succeeded: the common case then costs no write.
-- A gateway that dies between the commit and the enqueue leaves an unmarked row without a job; the sweep finds it
-- all the same once it has waited past the poll delay (it looks in Redis for every queued row that old).
ALTER TABLE trainings ADD COLUMN enqueue_failed boolean NOT NULL DEFAULT false;
UPDATE trainings SET enqueue_failed = true WHERE status = 'queued' AND NOT enqueued;
ALTER TABLE trainings DROP COLUMN enqueued;
ALTER TABLE generations ADD COLUMN enqueue_failed boolean NOT NULL DEFAULT false;
UPDATE generations SET enqueue_failed = true WHERE status = 'queued' AND NOT enqueued;
ALTER TABLE generations DROP COLUMN enqueued;
