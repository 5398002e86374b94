import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ObjectEvents } from './events.js';
import type { ChangeOrigin, ObjectStore } from './object-store.js';
import { createdByForExpiry, parseStored, ruleMatches, type LifecycleRule } from './operations/lifecycle-rules.js';

/** Keys read at once: each page is one short SQLite read, and the event loop serves requests between pages. */
const PAGE_KEYS = 256;
/** Deletions under way at once: their commits share a group commit's fsync, and leave room for clients' writes. */
const DELETIONS_AT_ONCE = 8;

/** Thrown by a deletion's condition: the object changed since its page was read, and is not expired now. */
class NotExpired extends Error {}

/**
 * S3 lifecycle rules carried out: each pass deletes the objects an enabled Expiration rule has
 * expired, through the store's own delete (crash-safe, the share file removed) with a
 * `LifecycleExpiration:Delete` event, and aborts the multipart uploads an
 * AbortIncompleteMultipartUpload rule has. A bucket's keys are read a page at a time, in key order
 * from the rule's prefix, so a bucket of millions of objects is never held in memory.
 */
export class LifecycleExpiration {
  private stopped = false;
  /**
   * The rules whose objects a pass read to the end, by bucket and rule, with the creation time it
   * expired up to: a Days rule's changes only at midnight UTC, so the passes of the day between
   * read nothing (S3 too evaluates rules once a day). Only the rules there are now are kept.
   */
  private scanned = new Map<string, number>();

  constructor(private readonly objects: ObjectStore, private readonly events: Pick<ObjectEvents, 'full'>) {}

  /** Ends the pass under way after the deletion it is making. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * One pass over every bucket's enabled rules at `now` (epoch ms). Stops early, to go on at the
   * next pass, while the event queue is full (as writes wait then) or once stopped.
   */
  async run(now: number): Promise<{ expired: number; aborted: number }> {
    const done = { expired: 0, aborted: 0 };
    const scanned = new Map<string, number>();
    let complete = false;
    try {
      for (const { bucket, lifecycle } of this.objects.lifecycleConfigurations()) {
        for (const rule of parseStored(lifecycle)?.rules ?? []) {
          if (!rule.enabled) continue;
          if (this.stopped || this.events.full) return done;
          const createdBy = expiredCreatedBy(rule, now);
          if (createdBy !== undefined) {
            const scan = `${bucket}\0${JSON.stringify(rule)}`;
            // a date's rule expires the objects written since too: each pass reads them
            if (createdBy === Infinity || this.scanned.get(scan) !== createdBy) {
              const expired = await this.expireObjects(bucket, rule, createdBy);
              done.expired += expired.count;
              if (!expired.complete) return done;
            }
            scanned.set(scan, createdBy);
          }
          if (rule.abortIncompleteMultipartUploadDays !== undefined) {
            // an upload has no size yet: the rule's prefix alone says which are its
            const initiatedBefore = createdByForExpiry(rule.abortIncompleteMultipartUploadDays, now) + 1;
            done.aborted += await this.objects.abortUploadsInitiatedBefore(initiatedBefore, { bucket, prefix: rule.prefix ?? '' });
          }
        }
      }
      complete = true;
      return done;
    } finally {
      // a whole pass leaves the rules there are now; one cut short adds what it read to the end
      this.scanned = complete ? scanned : new Map([...this.scanned, ...scanned]);
    }
  }

  /** Deletes the objects of the rule created by `createdBy`; `complete` unless it stopped before the rule's last key. */
  private async expireObjects(bucket: string, rule: LifecycleRule, createdBy: number): Promise<{ count: number; complete: boolean }> {
    const prefix = rule.prefix ?? '';
    let count = 0;
    for (let after = ''; ;) {
      const page = this.objects.keysWithPrefix(bucket, prefix, after, PAGE_KEYS, rule.tags !== undefined);
      const expired = page.filter((object) => object.lastModified <= createdBy && ruleMatches(rule, object));
      for (let at = 0; at < expired.length; at += DELETIONS_AT_ONCE) {
        if (this.stopped || this.events.full) return { count, complete: false };
        const deleted = await Promise.all(expired.slice(at, at + DELETIONS_AT_ONCE).map((object) => this.expire(bucket, object.key, rule, createdBy)));
        count += deleted.filter(Boolean).length;
      }
      if (page.length < PAGE_KEYS) return { count, complete: true };
      after = page[page.length - 1].key;
      await nextTurn();
    }
  }

  /** Deletes the object unless a write replaced it since its page was read with one the rule has not expired. */
  private async expire(bucket: string, key: string, rule: LifecycleRule, createdBy: number): Promise<boolean> {
    try {
      return await this.objects.remove(bucket, key, lifecycleOrigin(), (current) => {
        if (current && (current.lastModified > createdBy || !ruleMatches(rule, current))) throw new NotExpired();
      }, 'LifecycleExpiration:Delete');
    } catch (error) {
      if (error instanceof NotExpired) return false;
      throw error;
    }
  }
}

/** The latest creation time of the objects the rule's Expiration has expired at `now` (Infinity: all); undefined when none. */
function expiredCreatedBy(rule: LifecycleRule, now: number): number | undefined {
  const { expiration } = rule;
  if (!expiration) return undefined;
  if ('days' in expiration) return createdByForExpiry(expiration.days, now);
  // S3: from the date on, every object the rule matches expires, those created since too
  if ('date' in expiration) return Date.parse(expiration.date) <= now ? Infinity : undefined;
  // delete markers: an unversioned bucket has none
  return undefined;
}

/** Who deletes: S3 itself, as its LifecycleExpiration records name it (Configuring S3 Lifecycle event notifications). */
function lifecycleOrigin(): ChangeOrigin {
  return { principalId: 's3.amazonaws.com', sourceIp: 's3.amazonaws.com', requestId: randomBytes(8).toString('hex').toUpperCase() };
}
