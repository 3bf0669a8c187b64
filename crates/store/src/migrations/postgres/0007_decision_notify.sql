-- Login pages wait for a sign-in's decision on whichever node they asked; the decision may
-- be taken on another. Each node listens on `cyberid_decided`, and a sign-in that leaves
-- 'pending' names itself there when its transaction commits.
CREATE FUNCTION cyberid_notify_decided() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cyberid_decided', NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER login_transactions_decided
    AFTER UPDATE OF status ON login_transactions
    FOR EACH ROW WHEN (OLD.status = 'pending' AND NEW.status <> 'pending')
    EXECUTE FUNCTION cyberid_notify_decided();
