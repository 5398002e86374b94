import type { Migrations } from '../../store/store.js';
import { UNSAFE_CODE_POINT_RANGES } from '../topic.js';

/** A GLOB matching a text that holds an unsafe code point (SQLite's GLOB compares code points in a [range]). */
const HOLDS_UNSAFE_CHARACTER = `'*[' || ${UNSAFE_CODE_POINT_RANGES.map(([first, last]) => `char(${first}) || '-' || char(${last})`).join(' || ')} || ']*'`;

/**
 * Schema of the broker's durable MQTT state (service 'broker').
 *
 * Every packet table carries the same packet columns — one per aedes-packet
 * field, with the payload as a BLOB (a string payload stays TEXT, which the
 * untyped BLOB affinity keeps as is) — plus `extra_fields`, a v8-serialized
 * object of any other field (MQTT 5 `properties`, `messageExpiry`, ...), NULL
 * when there are none. A NULL packet column means the packet had no such field.
 */
export const migrations: Migrations = [
  `
  CREATE TABLE broker_subscriptions (
    client_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    retain_handling INTEGER,
    retain_as_published INTEGER,
    no_local INTEGER,
    subscription_identifier INTEGER,
    PRIMARY KEY (client_id, topic)
  ) WITHOUT ROWID;

  -- The primary key's index on topic also answers the retained look-ups by
  -- topic-filter prefix, so no topic index has to be kept in memory.
  CREATE TABLE broker_retained_messages (
    topic TEXT NOT NULL PRIMARY KEY,
    cmd TEXT,
    broker_id TEXT,
    broker_counter INTEGER,
    payload BLOB,
    qos INTEGER,
    retain INTEGER,
    dup INTEGER,
    message_id INTEGER,
    extra_fields BLOB
  );

  -- AUTOINCREMENT: ids must never be reused, because a client's queue is
  -- delivered in id order and a stream snapshot is "ids up to the last one".
  CREATE TABLE broker_outgoing_packets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    cmd TEXT NOT NULL,
    broker_id TEXT,
    broker_counter INTEGER,
    topic TEXT,
    payload BLOB,
    qos INTEGER,
    retain INTEGER,
    dup INTEGER,
    message_id INTEGER,
    extra_fields BLOB
  );
  CREATE INDEX broker_outgoing_packets_by_client ON broker_outgoing_packets (client_id);
  CREATE INDEX broker_outgoing_packets_by_message_id ON broker_outgoing_packets (client_id, message_id);
  CREATE INDEX broker_outgoing_packets_by_broker_counter ON broker_outgoing_packets (client_id, broker_counter);

  CREATE TABLE broker_incoming_packets (
    client_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    cmd TEXT,
    broker_id TEXT,
    broker_counter INTEGER,
    topic TEXT,
    payload BLOB,
    qos INTEGER,
    retain INTEGER,
    dup INTEGER,
    extra_fields BLOB,
    PRIMARY KEY (client_id, message_id)
  );

  CREATE TABLE broker_wills (
    client_id TEXT NOT NULL PRIMARY KEY,
    cmd TEXT,
    broker_id TEXT,
    broker_counter INTEGER,
    topic TEXT,
    payload BLOB,
    qos INTEGER,
    retain INTEGER,
    dup INTEGER,
    message_id INTEGER,
    extra_fields BLOB
  );
  `,
  // The thing a will's client had logged in as ('' for an anonymous client; NULL: stored before this
  // column), for the will left by a crash to be checked against the configuration of the next start.
  `
  ALTER TABLE broker_wills ADD COLUMN thing TEXT;
  `,
  // Reserved topics take no retained message (topic.ts, refusesRetained): those kept before would
  // be replayed to their later subscribers.
  `
  DELETE FROM broker_retained_messages WHERE topic >= '$aws/' AND topic < '$aws0';
  `,
  // A queued publication is no retained message to its subscriber (MQTT-3.3.1-9): the store clears
  // RETAIN as it queues one, since a retained message sent on SUBSCRIBE is queued with RETAIN kept.
  // Those queued before kept it as published.
  `
  UPDATE broker_outgoing_packets SET retain = 0 WHERE cmd = 'publish' AND retain = 1;
  `,
  // Topics and filters with a control character or non-character are refused since (topic.ts,
  // hasUnsafeCharacter): libmosquitto clients drop the connection such a message arrives on, so a
  // retained or queued one kept from before would throw its subscriber off at every connect.
  ['broker_retained_messages', 'broker_outgoing_packets', 'broker_incoming_packets', 'broker_wills', 'broker_subscriptions']
    .map((table) => `DELETE FROM ${table} WHERE topic GLOB ${HOLDS_UNSAFE_CHARACTER};`).join('\n'),
  // A QoS 2 PUBLISH awaiting its PUBREL whose publication committed (incomingPublished): sent again
  // after a restart, it is answered PUBREC only (MQTT-4.3.3-2), not published a second time.
  `
  ALTER TABLE broker_incoming_packets ADD COLUMN published INTEGER NOT NULL DEFAULT 0;
  `,
  // The persistent sessions started (a CONNECT with CleanSession 0), whatever they hold: one that
  // holds nothing exists too (MQTT-3.2.2-2), until a clean CONNECT or its expiry ends it.
  `
  CREATE TABLE broker_sessions (
    client_id TEXT NOT NULL PRIMARY KEY
  ) WITHOUT ROWID;
  `,
];
