-- The digest of the approval a wallet sent with its PIN evaluation: its signature was
-- checked then, so the decision carrying the same approval need not be checked again.
ALTER TABLE login_transactions ADD COLUMN approval_digest BLOB;
