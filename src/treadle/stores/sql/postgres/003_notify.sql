-- Wake-ups by LISTEN/NOTIFY: workers and waiters in other processes learn of new work, signals
-- and finished executions at once instead of polling. Triggers send them in the transaction
-- of the write that causes them (so they are delivered at its commit, or never):
--   work:<wake_at>:<queue>   an execution nobody holds became claimable (an enqueue, a released
--                            lease, a signal for a released sleeper); <wake_at> is empty when
--                            it is due now, else its timer or delayed start
--   signal::<execution id>   a signal arrived in its inbox
--   done::<execution id>     it finished
-- One channel per schema, 'treadle:<schema>' (or 'treadle:<md5 of schema>' when that would
-- pass PostgreSQL's 63-byte limit), so isolated schemas never hear each other. Writes that
-- change none of this (appends, claims, renewals) only evaluate the triggers' WHEN clauses.

CREATE FUNCTION treadle_notify_execution() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    channel text := 'treadle:' || TG_TABLE_SCHEMA;
    signalled boolean := false;
BEGIN
    IF octet_length(channel) > 63 THEN
        channel := 'treadle:' || md5(TG_TABLE_SCHEMA);
    END IF;
    IF NEW.status IN ('completed', 'failed', 'cancelled') THEN
        PERFORM pg_notify(channel, 'done::' || NEW.id);
        RETURN NULL;
    END IF;
    IF NEW.status = 'suspended' AND NEW.wake_at IS NULL THEN
        -- A sleeper without a timer is claimable only once a signal waits for it.
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.signals WHERE execution_id = $1)',
                       TG_TABLE_SCHEMA) INTO signalled USING NEW.id;
        IF NOT signalled THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_notify(channel, 'work:' || coalesce(NEW.wake_at::text, '') || ':' || NEW.queue);
    RETURN NULL;
END
$$;

CREATE FUNCTION treadle_notify_signal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    channel text := 'treadle:' || TG_TABLE_SCHEMA;
    free_queue text;
BEGIN
    IF octet_length(channel) > 63 THEN
        channel := 'treadle:' || md5(TG_TABLE_SCHEMA);
    END IF;
    PERFORM pg_notify(channel, 'signal::' || NEW.execution_id);
    EXECUTE format('SELECT queue FROM %I.executions WHERE id = $1 AND owner IS NULL '
                   'AND status = ''suspended''', TG_TABLE_SCHEMA)
        INTO free_queue USING NEW.execution_id;
    IF free_queue IS NOT NULL THEN
        PERFORM pg_notify(channel, 'work::' || free_queue);
    END IF;
    RETURN NULL;
END
$$;

-- Enqueued (or created free by any other path).
CREATE TRIGGER treadle_wake_created AFTER INSERT ON executions FOR EACH ROW
    WHEN (NEW.owner IS NULL AND NEW.status IN ('pending', 'running', 'suspended'))
    EXECUTE FUNCTION treadle_notify_execution();

-- A lease given up (a worker draining, an execution stopped here).
CREATE TRIGGER treadle_wake_released AFTER UPDATE OF owner ON executions FOR EACH ROW
    WHEN (OLD.owner IS NOT NULL AND NEW.owner IS NULL
          AND NEW.status IN ('pending', 'running', 'suspended'))
    EXECUTE FUNCTION treadle_notify_execution();

-- Finished.
CREATE TRIGGER treadle_wake_finished AFTER UPDATE OF status ON executions FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled')
          AND OLD.status NOT IN ('completed', 'failed', 'cancelled'))
    EXECUTE FUNCTION treadle_notify_execution();

CREATE TRIGGER treadle_wake_signalled AFTER INSERT ON signals FOR EACH ROW
    EXECUTE FUNCTION treadle_notify_signal();
