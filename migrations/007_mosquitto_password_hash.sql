-- Up Migration
-- The device secret as a Mosquitto 2 password-file hash ($7$<iterations>$<salt>$<PBKDF2-HMAC-SHA512>), next
-- to secret_hash: with MQTT_MODE=external and Mosquitto, `npm run mosquitto-auth` writes the broker's password
-- file from it (device secrets are stored hashed, so the plaintext is not available). Written at provisioning
-- and rotation; NULL for devices provisioned before this migration (rotate their secret to export them).
ALTER TABLE devices ADD COLUMN mosquitto_password_hash text
  CHECK (mosquitto_password_hash ~ '^\$7\$[1-9][0-9]{0,9}\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$');

-- A secret changed without a new Mosquitto hash must not leave the old secret valid at the broker.
CREATE FUNCTION devices_drop_stale_mosquitto_hash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.secret_hash IS DISTINCT FROM OLD.secret_hash
     AND NEW.mosquitto_password_hash IS NOT DISTINCT FROM OLD.mosquitto_password_hash THEN
    NEW.mosquitto_password_hash := NULL;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER devices_mosquitto_hash_stale BEFORE UPDATE OF secret_hash ON devices
  FOR EACH ROW EXECUTE FUNCTION devices_drop_stale_mosquitto_hash();

-- Down Migration
DROP TRIGGER IF EXISTS devices_mosquitto_hash_stale ON devices;
DROP FUNCTION IF EXISTS devices_drop_stale_mosquitto_hash();
ALTER TABLE devices DROP COLUMN IF EXISTS mosquitto_password_hash;
