-- The device that took a sign-in up (its first PIN evaluation or its decision): no other
-- device may act on the sign-in after it.
ALTER TABLE login_transactions ADD COLUMN device_thumbprint TEXT;
