import type { Migrations } from '../store/store.js';

/** The sync agent's tables; append-only (see Store.migrate). */
export const syncMigrations: Migrations = [
  `CREATE TABLE sync_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    priority INTEGER NOT NULL,
    -- 1: may overtake the backlog (the rule's liveFirst)
    live INTEGER NOT NULL,
    -- the rule's template applied, with \${id} still in it
    cloud_topic TEXT NOT NULL,
    local_topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    envelope INTEGER NOT NULL,
    -- what counts against sync.maxBytes
    bytes INTEGER NOT NULL,
    -- monotonic milliseconds of boot_id (see sync_boots for comparing boots)
    boot_id TEXT NOT NULL,
    enqueued_mono INTEGER NOT NULL,
    expires_mono INTEGER,
    -- shown to people and put in envelopes, never compared
    enqueued_wall INTEGER NOT NULL,
    -- connections that closed with this item as the oldest unacknowledged one
    attempts INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX sync_outbox_lane ON sync_outbox (priority, id);
  CREATE INDEX sync_outbox_rule ON sync_outbox (rule, id);
  CREATE INDEX sync_outbox_expiry ON sync_outbox (boot_id, expires_mono) WHERE expires_mono IS NOT NULL;
  -- shift: add to a monotonic time of boot_id to get one of the current boot
  CREATE TABLE sync_boots (boot_id TEXT PRIMARY KEY, shift_ms INTEGER NOT NULL, last_seen_mono INTEGER NOT NULL);
  CREATE TABLE sync_rule_counters (
    rule TEXT PRIMARY KEY,
    dropped INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE sync_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL,
    rule TEXT NOT NULL,
    priority INTEGER NOT NULL,
    live INTEGER NOT NULL,
    cloud_topic TEXT NOT NULL,
    local_topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    envelope INTEGER NOT NULL,
    enqueued_wall INTEGER NOT NULL,
    reason TEXT NOT NULL,
    failed_wall INTEGER NOT NULL
  );
  CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // Shadow sync: the last document both sides agreed on ({desired, reported}), the base of the three-way merge.
  `CREATE TABLE sync_shadows (thing TEXT NOT NULL, name TEXT NOT NULL, base TEXT NOT NULL, synced_at INTEGER NOT NULL,
    PRIMARY KEY (thing, name));`,
  // Object uploads (bucket → cloud S3): outbox rows of their own kind; a multipart upload's UploadId and
  // finished parts are kept so a restart sends only the parts the cloud has not confirmed.
  `ALTER TABLE sync_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
  ALTER TABLE sync_dead_letters ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
  CREATE INDEX sync_outbox_objects ON sync_outbox (priority DESC, id) WHERE kind = 'object';
  CREATE TABLE sync_uploads (item_id INTEGER PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, upload_id TEXT NOT NULL, part_bytes INTEGER NOT NULL);
  CREATE TABLE sync_upload_parts (item_id INTEGER NOT NULL, part_number INTEGER NOT NULL, etag TEXT NOT NULL, md5 TEXT NOT NULL,
    PRIMARY KEY (item_id, part_number));`,
  // An upload deleting its local copy asks whether another rule's upload of that object is queued.
  `CREATE INDEX sync_outbox_object_topics ON sync_outbox (local_topic) WHERE kind = 'object';`,
  // A CreateMultipartUpload sent and not answered yet (signing time, epoch ms): an answer lost on the
  // way leaves an upload in the cloud that only ListMultipartUploads can find again.
  `CREATE TABLE sync_upload_intents (item_id INTEGER PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, requested_wall INTEGER NOT NULL);`,
  // Shadow sync: the device's changes the cloud refused for good (the update as sent, JSON), kept out
  // of later updates while the device still holds them; NULL: none.
  `ALTER TABLE sync_shadows ADD COLUMN refused TEXT;`,
  // Shadow sync: the cloud's changes the device's shadow refused for good (the update as sent, JSON),
  // kept out of later local updates while the cloud still holds them; NULL: none.
  `ALTER TABLE sync_shadows ADD COLUMN refused_by_device TEXT;`,
];
