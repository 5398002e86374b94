import { inexactIntegers } from '../json-integers.js';
import { errors } from './errors.js';

/**
 * The shadow document model of the AWS IoT Device Shadow service ("Device Shadow service
 * documents" in the AWS IoT developer guide), as pure functions: request parsing and validation,
 * the merge of an update, metadata, delta, and the response documents.
 */

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject { [key: string]: Json }

export interface ShadowLimits {
  /** desired + reported, serialized, in bytes (AWS: 8 KB). */
  maxDocumentBytes: number;
  /** Levels inside desired or reported (AWS: 6). */
  maxDepth: number;
  /** A request payload larger than this is refused before it is parsed. */
  maxPayloadBytes: number;
  maxClientTokenBytes: number;
  maxThingNameBytes: number;
  maxShadowNameBytes: number;
}

export type Section = 'desired' | 'reported';
const SECTIONS: readonly Section[] = ['desired', 'reported'];

export interface ShadowState { desired?: JsonObject; reported?: JsonObject }

/** A shadow: alive, or soft-deleted (state cleared, version kept). */
export interface ShadowRecord {
  state: ShadowState;
  metadata: ShadowState;
  version: number;
  /** Epoch seconds of the last accepted change. */
  timestamp: number;
  /** Epoch seconds of the delete, for a soft-deleted shadow. */
  deletedAt?: number;
}

/**
 * A shadow as the store keeps it: state and metadata as JSON text, parsed only by what needs
 * the objects. An update parses them once into objects of its own to merge into, and reuses
 * the text as it is for `/documents`' `previous`.
 */
export interface StoredShadow {
  /** JSON of a ShadowState. */
  state: string;
  /** JSON of a ShadowState. */
  metadata: string;
  version: number;
  timestamp: number;
  deletedAt?: number;
}

/** A stored shadow as objects, for what reads into its state (a get and its delta). */
export function parseStored(stored: StoredShadow): ShadowRecord {
  return {
    state: JSON.parse(stored.state),
    metadata: JSON.parse(stored.metadata),
    version: stored.version,
    timestamp: stored.timestamp,
    ...(stored.deletedAt !== undefined ? { deletedAt: stored.deletedAt } : {}),
  };
}

export interface UpdateRequest {
  /** null clears desired and reported but keeps the shadow. */
  state: { desired?: JsonObject | null; reported?: JsonObject | null } | null;
  version?: number;
  clientToken?: string;
}

export interface TokenRequest { clientToken?: string }

/**
 * AWS: a shadow re-created within 48 hours of its delete continues the deleted one's version;
 * after that it starts again from 0.
 */
export const VERSION_KEPT_AFTER_DELETE_SECONDS = 48 * 3600;

const THING_NAME_PATTERN = /^[a-zA-Z0-9:_-]+$/;
/**
 * AWS IoT data plane API: shadow names match `[$a-zA-Z0-9:_-]+`, one character more than thing
 * names, for shadows AWS reserves such as the software package catalog's `$package`.
 */
export const SHADOW_NAME_PATTERN = /^[$a-zA-Z0-9:_-]+$/;

export function validateThingName(name: string, limits: ShadowLimits): void {
  if (!THING_NAME_PATTERN.test(name) || name.length > limits.maxThingNameBytes) throw errors.invalidThingName();
}

export function validateShadowName(name: string, limits: ShadowLimits): void {
  if (!SHADOW_NAME_PATTERN.test(name) || name.length > limits.maxShadowNameBytes) throw errors.invalidShadowName();
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes to a JSON value: size first (cheap), then UTF-8, then JSON. An empty payload is `{}`. */
export function decodePayload(payload: Buffer, limits: ShadowLimits): unknown {
  if (payload.length > limits.maxPayloadBytes) throw errors.payloadTooLarge();
  if (payload.length === 0) return {};
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    throw errors.notUtf8();
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw errors.invalidJson();
  }
  const [inexact] = inexactIntegers(text);
  if (inexact !== undefined) {
    const error = errors.inexactInteger(inexact);
    error.clientToken = clientTokenOf(value, limits);
    throw error;
  }
  return value;
}

/** The clientToken of any request, for echoing in an error; undefined when absent or unusable. */
export function clientTokenOf(value: unknown, limits: ShadowLimits): string | undefined {
  if (!isObject(value)) return undefined;
  const token = own(value, 'clientToken');
  return typeof token === 'string' && Buffer.byteLength(token) <= limits.maxClientTokenBytes ? token : undefined;
}

/** A get or delete request: an optional clientToken. */
export function parseTokenRequest(value: unknown, limits: ShadowLimits): TokenRequest {
  if (!isObject(value)) throw errors.invalidJson();
  return { clientToken: parseClientToken(value, limits) };
}

/** An update request state document, validated in full before anything is read or written. */
export function parseUpdateRequest(value: unknown, limits: ShadowLimits): UpdateRequest {
  if (!isObject(value)) throw errors.invalidJson();
  const clientToken = parseClientToken(value, limits);
  const version = own(value, 'version');
  if (version !== undefined && !(typeof version === 'number' && Number.isSafeInteger(version) && version >= 0)) throw errors.invalidVersion();
  if (!Object.hasOwn(value, 'state')) throw errors.missingState();
  const state = value.state;
  if (state === null) return { state: null, version: version as number | undefined, clientToken };
  if (!isObject(state)) throw errors.stateNotObject();
  for (const key of Object.keys(state)) if (key !== 'desired' && key !== 'reported') throw errors.invalidStateNode(key);
  const parsed: NonNullable<UpdateRequest['state']> = {};
  for (const section of SECTIONS) {
    if (!Object.hasOwn(state, section)) continue;
    const content = state[section];
    if (content !== null && !isObject(content)) throw section === 'desired' ? errors.desiredNotObject() : errors.reportedNotObject();
    if (content !== null) checkContent(content, 0, limits.maxDepth);
    parsed[section] = content;
  }
  return { state: parsed, version: version as number | undefined, clientToken };
}

function parseClientToken(request: JsonObject, limits: ShadowLimits): string | undefined {
  const token = own(request, 'clientToken');
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || Buffer.byteLength(token) > limits.maxClientTokenBytes) throw errors.invalidClientToken();
  return token;
}

/**
 * Depth and values inside desired/reported. Stops at the first level past the limit, so a
 * hostile million-level document costs no more than a legal one. Numbers JSON.parse turned
 * into Infinity (1e999) cannot be stored faithfully and are refused.
 */
function checkContent(container: JsonObject | Json[], level: number, maxDepth: number): void {
  const values = Array.isArray(container) ? container : Object.values(container);
  if (values.length > 0 && level + 1 > maxDepth) throw errors.tooDeep(maxDepth);
  for (const value of values) {
    if (typeof value === 'number' && !Number.isFinite(value)) throw errors.invalidNode();
    // AWS: "Arrays can't have null values"
    if (value === null && Array.isArray(container)) throw errors.invalidNode();
    if (value !== null && typeof value === 'object') checkContent(value, level + 1, maxDepth);
  }
}

/**
 * What an accepted update stores and publishes. The response documents are JSON text, composed
 * around the stored text rather than serialised again from objects.
 */
export interface UpdateResult {
  stored: StoredShadow;
  /** The `/update/accepted` document. */
  accepted: string;
  /** The `/update/delta` document, when desired and reported differ after the update. */
  delta?: string;
  /** The `/update/documents` document. */
  documents: string;
}

/** The version an update must name, and the one a new shadow continues from. */
export function currentVersion(previous: { version: number; deletedAt?: number } | undefined, now: number): number {
  if (!previous) return 0;
  if (previous.deletedAt !== undefined && now - previous.deletedAt > VERSION_KEPT_AFTER_DELETE_SECONDS) return 0;
  return previous.version;
}

/**
 * Applies an update to the stored shadow (or creates it). Only the fields named change; a null
 * leaf deletes its field; `"desired": null` removes the section; `"state": null` clears both.
 * Arrays are values: replaced whole, never merged.
 */
export function applyUpdate(previous: StoredShadow | undefined, request: UpdateRequest, now: number, limits: ShadowLimits): UpdateResult {
  const base = currentVersion(previous, now);
  if (request.version !== undefined && request.version !== base) throw errors.versionConflict();
  const alive = previous && previous.deletedAt === undefined ? previous : undefined;
  // Freshly parsed, so the merge may change them in place.
  const previousState: ShadowState = alive ? JSON.parse(alive.state) : {};
  const previousMetadata: ShadowState = alive ? JSON.parse(alive.metadata) : {};
  const requestState = request.state ?? { desired: null, reported: null };
  const state: ShadowState = {};
  const metadata: ShadowState = {};
  const stateTexts: Array<[Section, string]> = [];
  const metadataTexts: Array<[Section, string]> = [];
  let bytes = 0;
  for (const section of SECTIONS) {
    const patch = requestState[section];
    if (patch === null) continue;
    const content = previousState[section] ?? (patch !== undefined ? emptyObject() : undefined);
    if (content === undefined) continue;
    const contentMetadata = previousMetadata[section] ?? emptyObject();
    if (patch) mergeInto(content, contentMetadata, patch, now);
    if (!hasKeys(content)) continue;
    state[section] = content;
    metadata[section] = contentMetadata;
    // AWS's 8 KB limit counts desired + reported as stored, metadata excluded.
    const text = JSON.stringify(content);
    bytes += Buffer.byteLength(text);
    stateTexts.push([section, text]);
    metadataTexts.push([section, JSON.stringify(contentMetadata)]);
  }
  if (bytes > limits.maxDocumentBytes) throw errors.payloadTooLarge();
  const version = base + 1;
  const next: StoredShadow = { state: objectText(stateTexts), metadata: objectText(metadataTexts), version, timestamp: now };
  const token = request.clientToken !== undefined ? `,"clientToken":${JSON.stringify(request.clientToken)}` : '';
  // The request's state echoed as sent, with metadata mirroring it: `"state": null` is answered
  // `"state":null,"metadata":{"timestamp":…}`, as AWS IoT answers it.
  const echoedMetadata = metadataOf(request.state as Json, now);
  const accepted = `{"state":${JSON.stringify(request.state)},"metadata":${JSON.stringify(echoedMetadata)},"version":${version},"timestamp":${now}${token}}`;
  // a shadow the update creates has none: `"previous":null`, as AWS IoT's message carries it
  const previousSnapshot = `"previous":${alive ? snapshotText(alive) : 'null'},`;
  const documents = `{${previousSnapshot}"current":${snapshotText(next)},"timestamp":${now}${token}}`;
  const delta = deltaDocument({ state, metadata });
  return {
    stored: next,
    accepted,
    documents,
    ...(delta ? { delta: `{"state":${JSON.stringify(delta.state)},"metadata":${JSON.stringify(delta.metadata)},"version":${version},"timestamp":${now}${token}}` } : {}),
  };
}

/** The `/get/accepted` document (and the REST GET body): state with delta, metadata, version. */
export function getDocument(record: ShadowRecord, now: number, clientToken?: string): JsonObject {
  const delta = deltaDocument(record);
  return {
    state: { ...record.state, ...(delta ? { delta: delta.state } : {}) } as JsonObject,
    metadata: record.metadata as JsonObject,
    version: record.version,
    timestamp: now,
    ...(clientToken !== undefined ? { clientToken } : {}),
  };
}

/** The `/delete/accepted` document: the version the shadow had, and the time. */
export function deleteDocument(deleted: { version: number }, now: number, clientToken?: string): JsonObject {
  return { version: deleted.version, timestamp: now, ...(clientToken !== undefined ? { clientToken } : {}) };
}

/** `/documents`' `previous` or `current`: state, metadata and version. */
function snapshotText(stored: StoredShadow): string {
  return `{"state":${stored.state},"metadata":${stored.metadata},"version":${stored.version}}`;
}

/** The JSON text of an object from its fields' names and JSON texts, as JSON.stringify would write it. */
function objectText(fields: Array<[string, string]>): string {
  let text = '{';
  for (let i = 0; i < fields.length; i++) text += `${i > 0 ? ',' : ''}${JSON.stringify(fields[i][0])}:${fields[i][1]}`;
  return `${text}}`;
}

function deltaDocument(record: Pick<ShadowRecord, 'state' | 'metadata'>): { state: JsonObject; metadata: JsonObject } | undefined {
  const desired = record.state.desired;
  if (!desired) return undefined;
  const delta = deltaOf(desired, record.state.reported ?? emptyObject());
  if (!delta) return undefined;
  return { state: delta, metadata: metadataAlong(delta, desired, record.metadata.desired ?? emptyObject()) };
}

/**
 * The delta: desired fields missing from reported or different to it. Nested objects are compared
 * field by field and keep their full path; anything else (arrays included) is compared whole.
 */
export function deltaOf(desired: JsonObject, reported: JsonObject): JsonObject | undefined {
  const delta = emptyObject();
  for (const key of Object.keys(desired)) {
    const wanted = desired[key];
    const actual = own(reported, key);
    if (isObject(wanted) && isObject(actual)) {
      const inner = deltaOf(wanted, actual);
      if (inner) setKey(delta, key, inner);
    } else if (actual === undefined || !deepEqual(wanted, actual)) {
      setKey(delta, key, wanted);
    }
  }
  return hasKeys(delta) ? delta : undefined;
}

/** The metadata of the delta's fields, taken from desired's metadata along the same paths. */
function metadataAlong(delta: JsonObject, desired: JsonObject, desiredMetadata: JsonObject): JsonObject {
  const result = emptyObject();
  for (const key of Object.keys(delta)) {
    const value = delta[key];
    const metadata = own(desiredMetadata, key);
    // A field taken whole from desired is the same object; a nested delta is a new one.
    if (value === desired[key] || !isObject(value) || !isObject(metadata)) setKey(result, key, metadata ?? null);
    else setKey(result, key, metadataAlong(value, desired[key] as JsonObject, metadata));
  }
  return result;
}

/** Metadata mirrors the value: `{ timestamp }` per leaf, objects and arrays element by element. */
export function metadataOf(value: Json, timestamp: number): Json {
  if (Array.isArray(value)) return value.map((element) => metadataOf(element, timestamp));
  if (isObject(value)) {
    const result = emptyObject();
    for (const key of Object.keys(value)) setKey(result, key, metadataOf(value[key], timestamp));
    return result;
  }
  return { timestamp };
}

/**
 * AWS IoT keeps objects as values below desired and reported: `{}` is stored (and replaces a
 * non-object), and an object whose fields were all deleted stays as `{}`; only an emptied section
 * disappears. A patch object holding nothing but deletions deletes what it names and creates nothing.
 */
function mergeInto(target: JsonObject, targetMetadata: JsonObject, patch: JsonObject, timestamp: number): void {
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) {
      delete target[key];
      delete targetMetadata[key];
      continue;
    }
    if (isObject(value)) {
      const existing = own(target, key);
      if (!isObject(existing) && onlyDeletes(value)) continue;
      const child = isObject(existing) ? existing : emptyObject();
      const existingMetadata = own(targetMetadata, key);
      const childMetadata = isObject(existing) && isObject(existingMetadata) ? existingMetadata : emptyObject();
      mergeInto(child, childMetadata, value, timestamp);
      setKey(target, key, child);
      setKey(targetMetadata, key, childMetadata);
      continue;
    }
    setKey(target, key, value);
    setKey(targetMetadata, key, metadataOf(value, timestamp));
  }
}

/** A patch object that only deletes: at least one field, each null or such an object. */
function onlyDeletes(patch: JsonObject): boolean {
  const values = Object.values(patch);
  return values.length > 0 && values.every((value) => value === null || (isObject(value) && onlyDeletes(value)));
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((element, i) => deepEqual(element, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]));
  }
  return false;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Field names come from devices: "__proto__" must stay a plain field, never reach a prototype.
export function own(object: JsonObject, key: string): Json | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

export function setKey(object: JsonObject, key: string, value: Json): void {
  // Only "__proto__" needs defining: any other key is a plain assignment, which keeps the object fast.
  if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  else object[key] = value;
}

function hasKeys(object: JsonObject): boolean {
  for (const key in object) if (Object.hasOwn(object, key)) return true;
  return false;
}

function emptyObject(): JsonObject {
  return {};
}
