import { randomUUID } from 'node:crypto';
import { errors, S3Error } from '../errors.js';
import type { ObjectStore } from '../object-store.js';
import { checkTags, tagList, type Tags } from '../tags.js';
import { el, isElement, isoTime } from '../xml.js';

/**
 * One rule of a bucket's lifecycle configuration (S3 LifecycleRule), of what the gateway honours:
 * expiration of objects and aborting of incomplete multipart uploads, for keys of a prefix, objects
 * of a size and objects with tags.
 */
export interface LifecycleRule {
  id: string;
  enabled: boolean;
  /** How the client wrote the filter, and so how it reads back: the rule's own Prefix (the old API), a Filter, or a Filter's And. */
  filterForm: 'prefix' | 'filter' | 'and';
  prefix?: string;
  objectSizeGreaterThan?: number;
  objectSizeLessThan?: number;
  /** Tags an object must have, each with its value (a Filter's Tag, an And's Tags). */
  tags?: Tags;
  /** Days after an object's creation, or a date (ISO, midnight UTC) from which every object the rule matches expires. */
  expiration?: { days: number } | { date: string } | { expiredObjectDeleteMarker: boolean };
  abortIncompleteMultipartUploadDays?: number;
}

export interface LifecycleConfiguration {
  rules: LifecycleRule[];
  /** S3's x-amz-transition-default-minimum-object-size: kept and answered, though nothing transitions here. */
  transitionDefaultMinimumObjectSize: string;
}

/** S3's limit on a configuration's rules (PutBucketLifecycleConfiguration). */
export const MAX_LIFECYCLE_RULES = 1000;
/** S3's limit on a rule's ID. */
const MAX_ID_LENGTH = 255;
export const TRANSITION_MINIMUM_SIZES = ['all_storage_classes_128K', 'varies_by_storage_class'];
const DAY_MS = 24 * 3600 * 1000;

/** The bucket's lifecycle configuration, or undefined when it has none. */
export function lifecycleOf(objects: ObjectStore, bucket: string): LifecycleConfiguration | undefined {
  return parseStored(objects.configuration(bucket, 'lifecycle'));
}

/** Configurations parsed for x-amz-expiration, by their stored JSON (a few buckets': cleared when full). */
const parsedForReads = new Map<string, LifecycleConfiguration>();
const PARSED_FOR_READS = 64;

/**
 * S3's x-amz-expiration of an object, on PutObject, CopyObject, CompleteMultipartUpload, GetObject
 * and HeadObject answers: when an enabled Expiration rule of its bucket matches it, the earliest
 * day it expires (`expiry-date`, an HTTP date) and that rule's ID (`rule-id`, URL-encoded).
 */
export function expirationHeaders(objects: ObjectStore, bucket: string, object: { key: string; size: number; lastModified: number; tags?: Tags }): Record<string, string> {
  const stored = objects.configuration(bucket, 'lifecycle');
  if (!stored) return {};
  let configuration = parsedForReads.get(stored);
  if (!configuration) {
    if (parsedForReads.size >= PARSED_FOR_READS) parsedForReads.clear();
    configuration = parseStored(stored)!;
    parsedForReads.set(stored, configuration);
  }
  let earliest: { at: number; id: string } | undefined;
  for (const rule of configuration.rules) {
    if (!rule.enabled || !rule.expiration || !ruleMatches(rule, object)) continue;
    const at = expiresAt(rule.expiration, object.lastModified);
    if (at !== undefined && (!earliest || at < earliest.at)) earliest = { at, id: rule.id };
  }
  return earliest ? { 'x-amz-expiration': `expiry-date="${new Date(earliest.at).toUTCString()}", rule-id="${encodeURIComponent(earliest.id)}"` } : {};
}

/** When an object created at `createdAt` expires under `expiration` (epoch ms): the creation plus the days rounded up to midnight UTC, or the date. */
function expiresAt(expiration: NonNullable<LifecycleRule['expiration']>, createdAt: number): number | undefined {
  if ('days' in expiration) return Math.ceil((createdAt + expiration.days * DAY_MS) / DAY_MS) * DAY_MS;
  if ('date' in expiration) return Date.parse(expiration.date);
  return undefined;
}

/** Replaces the bucket's lifecycle configuration by what `change` makes of the stored one (read in the write's transaction); undefined removes it. */
export async function changeLifecycle(objects: ObjectStore, bucket: string,
  change: (current: LifecycleConfiguration | undefined) => LifecycleConfiguration | undefined): Promise<LifecycleConfiguration | undefined> {
  let changed: LifecycleConfiguration | undefined;
  await objects.changeConfiguration(bucket, 'lifecycle', (stored) => {
    changed = change(parseStored(stored));
    if (changed) checkRules(changed.rules);
    return changed ? JSON.stringify(changed) : undefined;
  });
  return changed;
}

export function parseStored(stored: string | undefined): LifecycleConfiguration | undefined {
  return stored ? (JSON.parse(stored) as LifecycleConfiguration) : undefined;
}

/** What S3 checks of the rules together: at most 1,000 of them, and unique IDs. */
function checkRules(rules: LifecycleRule[]): void {
  if (rules.length === 0 || rules.length > MAX_LIFECYCLE_RULES) throw errors.malformedXml();
  const ids = new Set<string>();
  for (const { id } of rules) {
    if (ids.has(id)) throw errors.invalidArgument('Rule ID must be unique. Found same ID for more than one rule', 'ID', id);
    ids.add(id);
  }
}

/** A gateway without what a rule asks for: NotImplemented, rather than a rule stored and never honoured. */
const notHere = (what: string) => new S3Error('NotImplemented', 501, `${what} is not implemented by this gateway: it has one storage class and unversioned buckets`);

/** S3 LifecycleRule from its parsed XML, checked as S3 checks it. */
export function ruleOf(element: unknown): LifecycleRule {
  if (!isElement(element)) throw errors.malformedXml();
  for (const action of ['Transition', 'NoncurrentVersionTransition', 'NoncurrentVersionExpiration']) {
    if (element[action] !== undefined) throw notHere(`The ${action} action`);
  }
  const id = optionalText(element.ID);
  if (id !== undefined && id.length > MAX_ID_LENGTH) throw errors.invalidArgument(`ID length should not exceed allowed limit of ${MAX_ID_LENGTH}`, 'ID', id);
  const status = text(element.Status);
  if (status !== 'Enabled' && status !== 'Disabled') throw errors.malformedXml();
  const rule: LifecycleRule = {
    // S3 names a rule without an ID itself
    id: id || Buffer.from(randomUUID()).toString('base64'),
    enabled: status === 'Enabled',
    ...filterOf(element),
  };
  if (element.Expiration !== undefined) rule.expiration = expirationOf(element.Expiration);
  if (element.AbortIncompleteMultipartUpload !== undefined) {
    const abort = element.AbortIncompleteMultipartUpload;
    if (!isElement(abort)) throw errors.malformedXml();
    rule.abortIncompleteMultipartUploadDays = positiveDays(abort.DaysAfterInitiation, 'DaysAfterInitiation', 'AbortIncompleteMultipartUpload');
  }
  if (!rule.expiration && rule.abortIncompleteMultipartUploadDays === undefined) throw errors.invalidRequest('At least one action needs to be specified in a rule');
  // an upload has no tags until it completes
  if (rule.tags && rule.abortIncompleteMultipartUploadDays !== undefined) throw errors.invalidRequest('AbortIncompleteMultipartUpload cannot be specified with Tags.');
  return rule;
}

/** The rule's Prefix (the old API) or its Filter: one of them, the Filter of one predicate or of an And. */
function filterOf(element: Record<string, unknown>): Pick<LifecycleRule, 'filterForm' | 'prefix' | 'objectSizeGreaterThan' | 'objectSizeLessThan' | 'tags'> {
  if ((element.Prefix === undefined) === (element.Filter === undefined)) throw errors.malformedXml();
  if (element.Prefix !== undefined) return { filterForm: 'prefix', prefix: text(element.Prefix) };
  // <Filter></Filter>: every object of the bucket
  if (typeof element.Filter === 'string' && element.Filter.trim() === '') return { filterForm: 'filter' };
  if (!isElement(element.Filter)) throw errors.malformedXml();
  // a Filter holds one predicate (one Tag), an And two or more (Tags among them)
  if (childNames(element.Filter).length > 1 || tagElements(element.Filter).length > 1) throw errors.malformedXml();
  if (element.Filter.And === undefined) return { filterForm: 'filter', ...predicatesOf(element.Filter) };
  if (!isElement(element.Filter.And) || childNames(element.Filter.And).length + Math.max(0, tagElements(element.Filter.And).length - 1) < 2) throw errors.malformedXml();
  return { filterForm: 'and', ...predicatesOf(element.Filter.And) };
}

/** A filter's Tag elements (parseXml makes them a list, a single one too). */
function tagElements(filter: Record<string, unknown>): unknown[] {
  return (filter.Tag ?? []) as unknown[];
}

function predicatesOf(filter: Record<string, unknown>): Pick<LifecycleRule, 'prefix' | 'objectSizeGreaterThan' | 'objectSizeLessThan' | 'tags'> {
  for (const name of childNames(filter)) {
    if (!['Prefix', 'ObjectSizeGreaterThan', 'ObjectSizeLessThan', 'Tag'].includes(name)) throw errors.malformedXml();
  }
  const tags = checkTags(tagList(filter));
  const greaterThan = filter.ObjectSizeGreaterThan === undefined ? undefined : integer(filter.ObjectSizeGreaterThan);
  const lessThan = filter.ObjectSizeLessThan === undefined ? undefined : integer(filter.ObjectSizeLessThan);
  if (greaterThan !== undefined && lessThan !== undefined && greaterThan >= lessThan) {
    throw errors.invalidArgument('ObjectSizeGreaterThan must be less than ObjectSizeLessThan', 'ObjectSizeGreaterThan', String(greaterThan));
  }
  return {
    ...(filter.Prefix !== undefined ? { prefix: text(filter.Prefix) } : {}),
    ...(greaterThan !== undefined ? { objectSizeGreaterThan: greaterThan } : {}),
    ...(lessThan !== undefined ? { objectSizeLessThan: lessThan } : {}),
    ...(tags.length ? { tags } : {}),
  };
}

function expirationOf(expiration: unknown): NonNullable<LifecycleRule['expiration']> {
  if (!isElement(expiration)) throw errors.malformedXml();
  const given = ['Days', 'Date', 'ExpiredObjectDeleteMarker'].filter((name) => expiration[name] !== undefined);
  if (given.length !== 1 || childNames(expiration).length !== 1) throw errors.malformedXml();
  if (expiration.Days !== undefined) return { days: positiveDays(expiration.Days, 'Days', 'Expiration') };
  if (expiration.Date !== undefined) return { date: midnightDate(text(expiration.Date)) };
  const marker = text(expiration.ExpiredObjectDeleteMarker);
  if (marker !== 'true' && marker !== 'false') throw errors.malformedXml();
  return { expiredObjectDeleteMarker: marker === 'true' };
}

/** An ISO 8601 date-time, which S3 takes only at midnight UTC. */
function midnightDate(value: string): string {
  const time = /^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?)?$/.test(value) ? Date.parse(value.includes('T') && !/(Z|[+-]\d\d:\d\d)$/.test(value) ? `${value}Z` : value) : NaN;
  if (Number.isNaN(time)) throw errors.malformedXml();
  if (time % DAY_MS !== 0) throw errors.invalidArgument("'Date' must be at midnight GMT", 'Date', value);
  return isoTime(time);
}

export function positiveDays(value: unknown, name: string, action: string): number {
  const days = integer(value);
  if (days < 1) throw errors.invalidArgument(`'${name}' for ${action} action must be a positive integer`, name, String(days));
  return days;
}

function integer(value: unknown): number {
  const digits = text(value).trim();
  if (!/^-?\d{1,15}$/.test(digits)) throw errors.malformedXml();
  return Number(digits);
}

function text(value: unknown): string {
  if (typeof value !== 'string') throw errors.malformedXml();
  return value;
}

function optionalText(value: unknown): string | undefined {
  return value === undefined ? undefined : text(value);
}

/** An element's children; the whitespace between them (an indented document) is none. */
function childNames(element: Record<string, unknown>): string[] {
  return Object.keys(element).filter((name) => name !== '#text' || String(element[name]).trim() !== '');
}

/** The rule as GetBucketLifecycleConfiguration answers it, its elements in S3's order. */
export function ruleElement(rule: LifecycleRule): string {
  const { expiration } = rule;
  const predicates = [
    rule.prefix !== undefined ? el('Prefix', rule.prefix) : '',
    ...(rule.tags ?? []).map(([key, value]) => el('Tag', [el('Key', key), el('Value', value)])),
    rule.objectSizeGreaterThan !== undefined ? el('ObjectSizeGreaterThan', rule.objectSizeGreaterThan) : '',
    rule.objectSizeLessThan !== undefined ? el('ObjectSizeLessThan', rule.objectSizeLessThan) : '',
  ];
  return el('Rule', [
    expiration ? el('Expiration', [
      'days' in expiration ? el('Days', expiration.days) : 'date' in expiration ? el('Date', expiration.date) : el('ExpiredObjectDeleteMarker', expiration.expiredObjectDeleteMarker),
    ]) : '',
    el('ID', rule.id),
    rule.filterForm === 'prefix' ? el('Prefix', rule.prefix ?? '') : el('Filter', rule.filterForm === 'and' ? [el('And', predicates)] : predicates),
    el('Status', rule.enabled ? 'Enabled' : 'Disabled'),
    rule.abortIncompleteMultipartUploadDays !== undefined
      ? el('AbortIncompleteMultipartUpload', [el('DaysAfterInitiation', rule.abortIncompleteMultipartUploadDays)])
      : '',
  ]);
}

/** Whether the rule's filter takes an object of this key, size and tags. */
export function ruleMatches(rule: LifecycleRule, object: { key: string; size: number; tags?: Tags }): boolean {
  return object.key.startsWith(rule.prefix ?? '')
    && (rule.tags ?? []).every(([key, value]) => object.tags?.some(([objectKey, objectValue]) => objectKey === key && objectValue === value))
    && (rule.objectSizeGreaterThan === undefined || object.size > rule.objectSizeGreaterThan)
    && (rule.objectSizeLessThan === undefined || object.size < rule.objectSizeLessThan);
}

/**
 * The latest creation time (epoch ms) of what a rule of `days` has expired at `now`. S3 adds the
 * days to the creation time and rounds the result up to the next midnight UTC (Lifecycle
 * configuration elements: "Days"); that is at or before now exactly when the creation time is at
 * or before the last midnight less the days.
 */
export function createdByForExpiry(days: number, now: number): number {
  return Math.floor(now / DAY_MS) * DAY_MS - days * DAY_MS;
}
