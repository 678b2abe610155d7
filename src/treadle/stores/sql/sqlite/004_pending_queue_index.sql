-- The queue index serves one query, a queue's depth (`queue = ? AND status = 'pending'`):
-- it now holds pending executions only, so an execution that starts running where it was
-- created (an HTTP pipeline, `Engine.start` without a queue) never writes it, and its
-- completion moves no entry in it: one B-tree less per creation, one or two per completion.
DROP INDEX idx_executions_queue;
CREATE INDEX idx_executions_pending ON executions (queue, status) WHERE status = 'pending';
