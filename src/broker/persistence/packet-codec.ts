import { deserialize, serialize } from 'node:v8';

export type Payload = Buffer | string;

/** A packet as aedes hands it to a persistence: aedes-packet's fields plus whatever else it carries. */
export interface Packet {
  cmd?: string;
  brokerId?: string | null;
  brokerCounter?: number;
  topic?: string;
  payload?: Payload;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  messageId?: number;
  [field: string]: unknown;
}

/** A packet as stored in the packet columns of the broker tables (see migrations.ts). */
export interface PacketColumns {
  cmd: string | null;
  broker_id: string | null;
  broker_counter: number | null;
  topic: string | null;
  payload: Payload | null;
  qos: number | null;
  retain: number | null;
  dup: number | null;
  message_id: number | null;
  extra_fields: Buffer | null;
}

const COLUMN_FIELDS = new Set(['cmd', 'brokerId', 'brokerCounter', 'topic', 'payload', 'qos', 'retain', 'dup', 'messageId']);

/** The optional fields aedes-packet copies from the packet it wraps. */
const AEDES_PACKET_EXTRA_FIELDS = ['clientId', 'nl', 'properties', 'messageExpiry'] as const;

const EMPTY_PAYLOAD = Buffer.alloc(0);

/** A boolean as stored in an INTEGER column; NULL when absent. */
export function booleanColumn(value: boolean | undefined | null): number | null {
  return value === undefined || value === null ? null : value ? 1 : 0;
}

function serializeExtra(extra: Record<string, unknown> | undefined): Buffer | null {
  return extra === undefined ? null : serialize(extra);
}

/**
 * Stores `packet` field for field as given — for retained messages and wills,
 * which aedes (and the abstract suite) read back exactly as they were stored.
 * Fields that are undefined or functions (aedes' QoSPacket carries its write
 * callback) are not data and are left out; `omitField` is one kept elsewhere.
 */
export function toColumns(packet: Packet, omitField?: string): PacketColumns {
  let extra: Record<string, unknown> | undefined;
  for (const field of Object.keys(packet)) {
    const value = packet[field];
    if (COLUMN_FIELDS.has(field) || field === omitField || value === undefined || typeof value === 'function') continue;
    (extra ??= {})[field] = value;
  }
  return {
    cmd: packet.cmd ?? null,
    broker_id: packet.brokerId ?? null,
    broker_counter: packet.brokerCounter ?? null,
    topic: packet.topic ?? null,
    payload: packet.payload ?? null,
    qos: packet.qos ?? null,
    retain: booleanColumn(packet.retain),
    dup: booleanColumn(packet.dup),
    message_id: packet.messageId ?? null,
    extra_fields: serializeExtra(extra),
  };
}

/** The inverse of `toColumns`. */
export function fromColumns(row: PacketColumns): Packet {
  const packet: Packet = {};
  if (row.cmd !== null) packet.cmd = row.cmd;
  if (row.broker_id !== null) packet.brokerId = row.broker_id;
  if (row.broker_counter !== null) packet.brokerCounter = row.broker_counter;
  if (row.topic !== null) packet.topic = row.topic;
  if (row.payload !== null) packet.payload = row.payload;
  if (row.qos !== null) packet.qos = row.qos;
  if (row.retain !== null) packet.retain = row.retain === 1;
  if (row.dup !== null) packet.dup = row.dup === 1;
  if (row.message_id !== null) packet.messageId = row.message_id;
  return row.extra_fields === null ? packet : Object.assign(packet, deserialize(row.extra_fields));
}

/**
 * Stores `original` the way aedes-packet 4 would wrap it (`new Packet(original)`):
 * queued and incoming packets are normalised like that by the reference
 * persistence, dropping wire-only fields such as `length`. `messageId` is
 * passed separately because aedes-packet clears it and the caller decides.
 */
export function toAedesPacketColumns(original: Packet, messageId: number | undefined): PacketColumns {
  let extra: Record<string, unknown> | undefined;
  for (const field of AEDES_PACKET_EXTRA_FIELDS) {
    if (Object.hasOwn(original, field) && original[field] !== undefined) (extra ??= {})[field] = original[field];
  }
  return {
    cmd: original.cmd || 'publish',
    broker_id: original.brokerId ?? null,
    broker_counter: original.brokerCounter || 0,
    topic: original.topic ?? null,
    payload: original.payload || EMPTY_PAYLOAD,
    qos: original.qos || 0,
    retain: original.retain ? 1 : 0,
    dup: original.dup ? 1 : 0,
    message_id: messageId ?? null,
    extra_fields: serializeExtra(extra),
  };
}

/** Rebuilds a packet stored by `toAedesPacketColumns` in aedes-packet's shape, which always has these keys. */
export function aedesPacketFromColumns(row: PacketColumns): Packet {
  const cmd = row.cmd ?? 'publish';
  const qos = row.qos ?? 0;
  const packet: Packet = {
    cmd,
    brokerId: row.broker_id ?? undefined,
    brokerCounter: row.broker_counter ?? 0,
    topic: row.topic ?? undefined,
    payload: row.payload ?? EMPTY_PAYLOAD,
    qos,
    retain: row.retain === 1,
    dup: row.dup === 1,
  };
  // aedes-packet has a (possibly unassigned) messageId exactly when one is meaningful. MQTT-2.3.1-5
  if (qos > 0 || cmd !== 'publish' || row.message_id !== null) packet.messageId = row.message_id ?? undefined;
  return row.extra_fields === null ? packet : Object.assign(packet, deserialize(row.extra_fields));
}
