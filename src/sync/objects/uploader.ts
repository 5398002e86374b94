import type { Logger } from 'pino';
import type { GroupCommit } from '../../store/group-commit.js';
import type { CloudConfig } from '../config.js';
import type { Outbox, OutboxItem } from '../outbox.js';
import type { RuleActivity } from '../activity.js';
import type { ObjectRef } from './object-bridge.js';
import { ByteBucket } from './metered-stream.js';
import { Backoff, type BackoffLimits } from '../backoff.js';
import type { S3Endpoints } from './s3-endpoints.js';
import type { UploadIntent, UploadState } from './upload-state.js';
import { abortUpload, deleteLocalCopy, findLostUploads, ItemFailed, LocalUnavailable, ObjectGone, sendTags, statusOf, uploadObject, type UploadContext } from './upload-object.js';

/** How often uploads left behind by evicted, expired or dead-lettered items are aborted in the cloud. */
const ORPHAN_SWEEP_MS = 60_000;
/** An expired item is deleted by the outbox's sweep within a second; until then the uploader waits. */
const EXPIRED_WAIT_MS = 1000;
/**
 * How far down the outbox an upload to start is looked for, past the items that wait for an upload
 * of their key in flight (or ahead of them). Beyond it items wait, as behind one upload at a time.
 */
const LOOKAHEAD_ITEMS = 256;
// S3 error codes that say "not now" rather than "never" (besides 5xx, 429 and no answer at all);
// RequestTimeTooSkewed (403) also teaches the client the server's time for the next attempt.
const TRANSIENT_ERRORS = new Set(['SlowDown', 'RequestTimeout', 'RequestTimeTooSkewed', 'Throttling', 'ThrottlingException']);
// The credentials refused, whatever the object (some of them 400s): the operator's to fix.
const CREDENTIAL_ERRORS = new Set(['ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'InvalidAccessKeyId', 'SignatureDoesNotMatch']);

export interface UploadStatus {
  online: boolean;
  since: string;
  lastError: string | null;
  /** The cloud refuses the uploads (401, 403: credentials, policy) rather than being away. */
  refused: boolean;
  /**
   * Rules whose uploads the cloud refuses (403 AccessDenied: a policy, which may deny one prefix
   * only) while it takes the others': the link's state is the others' to say.
   */
  refusedRules: RefusedRuleStatus[];
  /** While uploads wait after a failure: when the next attempt is due (ISO time). */
  nextAttempt: string | null;
  /** The oldest upload in flight (of `inFlight`). */
  current: UploadProgress | null;
  /** The uploads in flight, oldest first (at most cloud.s3.concurrency). */
  inFlight: UploadProgress[];
  uploaded: number;
  sentBytes: number;
  /** Uploads skipped because the local object changed or was deleted before its turn (the newer version has its own). */
  superseded: number;
}

export interface RefusedRuleStatus {
  rule: string;
  /** The cloud's code and message. */
  reason: string;
  /** Since when (ISO time): the first refusal after the rule's last upload. */
  since: string;
  /** When its next try is due (ISO time; past while that try is under way). */
  nextAttempt: string | null;
}

export interface UploadProgress {
  rule: string;
  object: string;
  size: number;
  sentBytes: number;
}

/** An upload in flight. */
interface Upload {
  item: OutboxItem;
  progress: UploadProgress;
  /** Its place in the order uploads started: a failure of one started before the last wait began is not counted again. */
  startedAs: number;
  done: Promise<void>;
}

/**
 * A rule whose uploads the cloud refuses with 403 (AccessDenied: a bucket or key policy that denies
 * its prefix): they wait, tried again one at a time up to refusedRetryMaxMs apart, the others go on.
 */
interface RefusedRule {
  backoff: Backoff;
  reason: string;
  since: string;
  retryAtMs: number;
  /** Refusals of uploads started up to here are this one's (started before it was known). */
  refusedUpTo: number;
  /** The item of its upload that is trying again, while one is. */
  tryingWith: number | undefined;
}

export interface UploaderOptions {
  cloud: CloudConfig['s3'];
  maxAttempts: number;
}

/**
 * Uploads the outbox's object items up to cloud.s3.concurrency at a time, started highest priority
 * first and then in arrival order; an item waits while an upload of its local object or cloud key is
 * in flight or ahead of it, so uploads of one key happen one at a time, in order. An item leaves
 * the outbox only once the cloud has the object verified; the cloud being unreachable or busy is
 * waited out with full-jitter backoff and costs the item nothing, as is a cloud that refuses the
 * gateway (401, its credentials), with a longer cap, as only the operator can fix that; during those
 * waits no upload starts, and after them one at a time until the cloud takes one. A 403 from a
 * policy (AccessDenied) holds back only the rule's uploads the same way. Another refusal
 * (NoSuchBucket, EntityTooLarge…) dead-letters the item at once, and a verification failure is
 * retried up to sync.maxAttempts times, then dead-lettered.
 */
export class ObjectUploader {
  private stopped = false;
  private loopDone: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  /** Waiting for work or an upload's end (not backing off). */
  private idle = false;
  private readonly abort = new AbortController();
  private endpoints: Promise<S3Endpoints> | undefined;
  private readonly bandwidth: ByteBucket;
  private readonly backoffs: Backoff;
  private readonly inFlight = new Map<number, Upload>();
  private started = 0;
  /** Uploads wait for the cloud (a failure every upload would meet); `refused`: a refusal of the gateway. */
  private hold: { refused: boolean } | undefined;
  /** Failures of uploads started up to here were waited out already. */
  private heldUpTo = 0;
  /** After a wait, one upload at a time until the cloud takes one. */
  private trying = false;
  private readonly refusedRules = new Map<string, RefusedRule>();
  private orphansSweptAt = -Infinity;
  paused = false;
  readonly status: UploadStatus;

  constructor(
    private readonly outbox: Outbox,
    private readonly uploads: UploadState,
    private readonly commit: GroupCommit,
    private readonly activity: RuleActivity,
    private readonly options: UploaderOptions,
    private readonly connect: () => Promise<S3Endpoints>,
    private readonly log: Logger,
    private readonly wallMs: () => number,
  ) {
    this.bandwidth = new ByteBucket(options.cloud.maxBytesPerSecond);
    this.backoffs = new Backoff(this.backoffLimits(), wallMs);
    this.status = {
      online: false, since: new Date(wallMs()).toISOString(), lastError: null, refused: false, refusedRules: [], nextAttempt: null, current: null, inFlight: [], uploaded: 0, sentBytes: 0, superseded: 0,
    };
  }

  private backoffLimits(): BackoffLimits {
    const { retryMinMs, retryMaxMs, refusedRetryMaxMs } = this.options.cloud;
    return { minMs: retryMinMs, maxMs: retryMaxMs, refusedMaxMs: refusedRetryMaxMs };
  }

  start(): void {
    this.loopDone = this.loop();
  }

  /** Aborts the uploads in flight (confirmed parts stay confirmed) and waits for them and the loop to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wakeUp?.();
    await this.loopDone;
  }

  /** Something new to upload, or sending resumed; a backoff is not cut short by it. */
  wake(): void {
    if (this.idle) this.wakeUp?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.hold) {
          await this.backoff(this.hold.refused);
          this.hold = undefined;
          this.heldUpTo = this.started;
          this.trying = true;
          continue;
        }
        const { queued, expired, refusedTurn } = this.startUploads();
        if (this.inFlight.size > 0 || (queued && refusedTurn !== undefined)) {
          // woken by an upload's end or new work; an expired item goes within a second; a refused rule's turn comes
          await this.waitForChange(expired ? Math.min(EXPIRED_WAIT_MS, refusedTurn ?? Infinity) : refusedTurn);
          continue;
        }
        if (expired) {
          await this.sleep(EXPIRED_WAIT_MS);
          continue;
        }
        // With nothing to upload, an upload whose item left the outbox is aborted now: the next
        // upload, which would sweep it, may never come, and its parts cost storage in the cloud.
        const orphansLeft = !this.paused && !(await this.abortOrphans(true));
        // tried again soon while the cloud is unreachable, else (a refusal of that upload) at the sweep's pace
        if (!orphansLeft) await this.waitForChange();
        else if (this.status.online) await this.waitForChange(ORPHAN_SWEEP_MS);
        else await this.backoff(this.status.refused);
      } catch (error) {
        // the outbox could not be read (an I/O error, a row that does not parse): tried again, never an unhandled rejection
        this.log.error({ err: error }, 'object uploads failed; trying again');
        await this.backoff();
      }
    }
    await Promise.all([...this.inFlight.values()].map((upload) => upload.done));
  }

  /**
   * Starts what may start, in outbox order: an item whose local object or cloud key is in flight, or
   * belongs to an item ahead of it that waits, waits too (so one key's uploads go in order).
   * A refused rule's items wait for its turn, then one of them tries.
   * `queued`: the outbox has uploads to do; `expired`: one waits for the outbox's sweep;
   * `refusedTurn`: milliseconds until the first refused rule's turn, if one waits for it.
   */
  private startUploads(): { queued: boolean; expired: boolean; refusedTurn: number | undefined } {
    const now = performance.now();
    const waiting = [...this.refusedRules].filter(([, refused]) => refused.tryingWith !== undefined || refused.retryAtMs > now);
    const turns = waiting.filter(([, refused]) => refused.tryingWith === undefined).map(([, refused]) => refused.retryAtMs - now);
    const items = this.paused ? [] : this.outbox.nextObjects(LOOKAHEAD_ITEMS, waiting.map(([rule]) => rule));
    const slots = this.trying ? 1 : this.options.cloud.concurrency;
    const taken = new Set<string>();
    for (const { item } of this.inFlight.values()) taken.add(item.localTopic).add(item.cloudTopic);
    let expired = false;
    for (const item of items) {
      if (this.inFlight.size >= slots) break;
      if (this.inFlight.has(item.id)) continue;
      const free = !taken.has(item.localTopic) && !taken.has(item.cloudTopic);
      taken.add(item.localTopic).add(item.cloudTopic);
      if (!free) continue;
      if (this.outbox.isExpired(item)) expired = true;
      else if (this.refusedRules.get(item.rule)?.tryingWith === undefined) this.begin(item);
    }
    return { queued: items.length > 0 || waiting.length > 0, expired, refusedTurn: turns.length === 0 ? undefined : Math.min(...turns) };
  }

  private begin(item: OutboxItem): void {
    const ref = JSON.parse(item.payload.toString('utf8')) as ObjectRef;
    const progress = { rule: item.rule, object: item.localTopic, size: ref.tagsOnly ? 0 : ref.size, sentBytes: 0 };
    const refused = this.refusedRules.get(item.rule);
    if (refused) refused.tryingWith = item.id;
    const upload: Upload = { item, progress, startedAs: ++this.started, done: Promise.resolve() };
    this.inFlight.set(item.id, upload);
    this.showInFlight();
    upload.done = this.upload(upload, ref).finally(() => {
      this.inFlight.delete(item.id);
      this.showInFlight();
      if (this.idle) this.wakeUp?.();
    });
  }

  private showInFlight(): void {
    this.status.inFlight = [...this.inFlight.values()].map((upload) => upload.progress);
    this.status.current = this.status.inFlight[0] ?? null;
  }

  private async upload(upload: Upload, ref: ObjectRef): Promise<void> {
    const { item } = upload;
    try {
      const s3 = await this.s3();
      await this.abortOrphans();
      const intent = this.uploads.intentOf(item.id);
      if (intent) await this.abortLostUploads(s3, intent);
      if (ref.tagsOnly) await sendTags(ref, this.context(s3, upload.progress));
      else await uploadObject(item.id, ref, this.context(s3, upload.progress));
      this.reachable();
      this.ruleTaken(item.rule);
      await this.commit.run(() => this.done(item));
      if (!ref.tagsOnly) this.status.uploaded++;
      this.activity.succeeded(item.rule);
      this.log.debug({ rule: item.rule, object: item.localTopic, to: item.cloudTopic, bytes: ref.size }, ref.tagsOnly ? 'object tags sent' : 'object uploaded');
      if (ref.deleteAfterUpload) {
        // another rule's upload of it still to come reads it then: deleted, it would be taken for superseded
        if (this.outbox.objectQueued(item.localTopic)) this.log.info({ object: item.localTopic }, 'local copy kept: another rule still uploads it');
        else await this.deleteLocalCopy(s3, ref);
      }
    } catch (error) {
      await this.failed(upload, error);
    } finally {
      const refused = this.refusedRules.get(item.rule);
      if (refused?.tryingWith === item.id) refused.tryingWith = undefined;
    }
  }

  /** One upload's; the bandwidth cap is shared by all in flight. */
  private context(s3: S3Endpoints, progress: UploadProgress): UploadContext {
    return {
      s3, uploads: this.uploads, commit: this.commit, partBytes: this.options.cloud.partBytes, verifyEtag: this.options.cloud.verifyEtag,
      bandwidth: this.bandwidth, signal: this.abort.signal,
      sent: (bytes) => {
        this.status.sentBytes += bytes;
        progress.sentBytes += bytes;
      },
      accepted: () => this.reachable(),
    };
  }

  /** Write: the item is finished (uploaded, or its local object gone); skipped if evicted meanwhile. */
  private done(item: OutboxItem): void {
    this.outbox.acknowledge([item]);
    this.uploads.forget(item.id);
  }

  /** After the upload is committed: a failure here leaves the local copy in place, never the reverse. */
  private async deleteLocalCopy(s3: S3Endpoints, ref: ObjectRef): Promise<void> {
    try {
      const outcome = await deleteLocalCopy(ref, { s3, signal: this.abort.signal });
      if (outcome === 'changed') this.log.info({ object: `${ref.bucket}/${ref.key}` }, 'local copy kept: it changed since the upload');
    } catch (error) {
      this.log.warn({ err: error, object: `${ref.bucket}/${ref.key}` }, 'uploaded, but the local copy could not be deleted');
    }
  }

  private async failed(upload: Upload, error: unknown): Promise<void> {
    if (this.stopped) return;
    const { item } = upload;
    const reason = `${(error as Error).name}: ${(error as Error).message}`;
    try {
      if (error instanceof ObjectGone) {
        // its multipart upload stays known until aborted
        await this.commit.run(() => this.outbox.acknowledge([item]));
        await this.abandonUpload(item);
        this.status.superseded++;
        this.log.info({ rule: item.rule, object: item.localTopic, reason: error.message }, 'upload skipped');
      } else if (error instanceof LocalUnavailable) {
        this.log.warn({ rule: item.rule, object: item.localTopic, reason: error.message }, 'upload waits for the local object store');
        this.holdAll(upload);
      } else if (error instanceof ItemFailed) {
        this.reachable();
        this.activity.failed(item.rule, error.message);
        const attempts = await this.commit.run(() => this.outbox.blame(item.id));
        if (attempts >= this.options.maxAttempts) await this.deadLetter(item, `${error.message} (${attempts} attempts)`);
        else this.holdAll(upload);
      } else if (isTransient(error)) {
        this.unreachable(reason);
        this.holdAll(upload);
      } else if (isRefusalOfTheRule(error)) {
        // an answer: the cloud is there and takes the credentials
        this.reachable();
        this.activity.failed(item.rule, reason);
        this.refuseRule(upload, reason);
      } else if (isRefusalOfTheGateway(error)) {
        this.refusedBy(reason);
        this.holdAll(upload, true);
      } else {
        this.reachable();
        await this.deadLetter(item, reason);
      }
    } catch (failure) {
      // e.g. the database is full: the item stays and is tried again.
      this.log.error({ err: failure }, 'could not record an upload failure');
      this.holdAll(upload);
    }
  }

  /**
   * No upload starts until a wait is over: the failure is the cloud's (or the local store's), which
   * any upload would meet. The failure of an upload started before the last wait ended was waited out.
   */
  private holdAll(upload: Upload, refused = false): void {
    if (upload.startedAs <= this.heldUpTo) return;
    this.hold = { refused: refused || (this.hold?.refused ?? false) };
  }

  /**
   * The rule's uploads wait (see RefusedRule); refusals of its uploads that started before the last one
   * count once. Logged when the rule's refusal begins and whenever its reason changes.
   */
  private refuseRule(upload: Upload, reason: string): void {
    const { rule } = upload.item;
    let refused = this.refusedRules.get(rule);
    if (!refused || refused.reason !== reason) {
      this.log.error({ reason, rule }, "cloud S3 refuses the rule's uploads; they wait, the other rules' go on (check the bucket policy)");
    }
    refused ??= { backoff: new Backoff(this.backoffLimits(), this.wallMs), reason, since: new Date(this.wallMs()).toISOString(), retryAtMs: 0, refusedUpTo: 0, tryingWith: undefined };
    refused.reason = reason;
    this.refusedRules.set(rule, refused);
    if (upload.startedAs > refused.refusedUpTo) {
      refused.retryAtMs = performance.now() + refused.backoff.failed(true);
      refused.refusedUpTo = this.started;
    }
    this.showRefusedRules();
  }

  /** An upload of the rule went through: a refusal of its uploads is over. */
  private ruleTaken(rule: string): void {
    if (!this.refusedRules.delete(rule)) return;
    this.log.info({ rule }, "cloud S3 takes the rule's uploads again");
    this.showRefusedRules();
  }

  private showRefusedRules(): void {
    this.status.refusedRules = [...this.refusedRules].map(([rule, { reason, since, backoff }]) => ({ rule, reason, since, nextAttempt: backoff.nextAttempt }));
  }

  private async deadLetter(item: OutboxItem, reason: string): Promise<void> {
    this.activity.failed(item.rule, reason);
    const moved = await this.commit.run(() => this.outbox.deadLetter(item.id, reason));
    if (moved) this.log.warn({ rule: item.rule, object: item.localTopic, reason }, 'object upload dead-lettered');
    await this.abandonUpload(item);
  }

  /**
   * The multipart upload of an item that left the outbox uncompleted: aborted in the cloud (the parts
   * cost storage there), then forgotten. One that cannot be aborted now is known still, and the
   * orphan sweep tries again (abortOrphans).
   */
  private async abandonUpload(item: OutboxItem): Promise<void> {
    const multipart = this.uploads.of(item.id);
    if (!multipart) return;
    const ref = JSON.parse(item.payload.toString('utf8')) as ObjectRef;
    const upload = { bucket: ref.cloudBucket, key: ref.cloudKey, uploadId: multipart.uploadId };
    try {
      await abortUpload(await this.s3(), upload, this.abort.signal);
      await this.commit.run(() => this.uploads.forget(item.id));
    } catch (error) {
      this.log.warn({ err: error, upload }, 'could not abort a multipart upload in the cloud; tried again later');
    }
  }

  /**
   * Uploads whose item was evicted, expired or dead-lettered by the outbox: aborted in the cloud,
   * before an upload at most once a minute, with nothing to upload (`now`) at once. False when one
   * could not be aborted (tried again at the next sweep).
   */
  private async abortOrphans(now = false): Promise<boolean> {
    if (!now && performance.now() - this.orphansSweptAt < ORPHAN_SWEEP_MS) return true;
    this.orphansSweptAt = performance.now();
    // an upload in flight whose item was evicted meanwhile is its own to end (done() or failed())
    const orphans = this.uploads.orphans().filter((orphan) => !this.inFlight.has(orphan.itemId));
    const intents = this.uploads.orphanIntents().filter((intent) => !this.inFlight.has(intent.itemId));
    if (orphans.length === 0 && intents.length === 0) return true;
    const s3 = await this.s3();
    let upload: object | undefined;
    try {
      for (const orphan of orphans) {
        upload = orphan;
        await abortUpload(s3, orphan, this.abort.signal);
        await this.commit.run(() => this.uploads.forget(orphan.itemId));
        this.reachable();
      }
      for (const intent of intents) {
        upload = intent;
        await this.abortLostUploads(s3, intent);
      }
    } catch (error) {
      if (this.stopped) return false;
      // Not an item's failure; the cloud being away is said once (unreachable), a refusal each time.
      if (isTransient(error)) {
        this.unreachable(`${(error as Error).name}: ${(error as Error).message}`);
      } else if (isRefusalOfTheGateway(error)) {
        this.refusedBy(`${(error as Error).name}: ${(error as Error).message}`);
      } else {
        this.reachable();
        this.log.warn({ err: error, upload }, 'could not abort a multipart upload whose item left the outbox');
      }
      return false;
    }
    return true;
  }

  /**
   * A CreateMultipartUpload of this item that went unanswered (the answer lost on the way, or the
   * daemon stopped first) may have made an upload nothing else knows of, whose parts would cost
   * storage for ever: found by ListMultipartUploads and aborted, before the item's next one is made.
   * A cloud that cannot list them (not implemented, not allowed) is said so and the upload goes on.
   * A cloud away or busy throws (the item waits).
   */
  private async abortLostUploads(s3: S3Endpoints, intent: UploadIntent): Promise<void> {
    try {
      for (const upload of await findLostUploads(s3, intent, this.abort.signal)) {
        await abortUpload(s3, upload, this.abort.signal);
        this.log.info({ upload }, 'aborted a multipart upload whose CreateMultipartUpload answer was lost');
      }
    } catch (error) {
      // a cloud away, or credentials it refuses, would refuse the new upload too: the item waits, the record kept
      if ((isTransient(error) && statusOf(error) !== 501) || CREDENTIAL_ERRORS.has((error as Error).name)) throw error;
      this.log.warn({ err: error, bucket: intent.bucket, key: intent.key },
        'could not look for (or abort) a multipart upload whose CreateMultipartUpload answer was lost; a lifecycle rule (AbortIncompleteMultipartUpload) removes it, or allow s3:ListBucketMultipartUploads');
    }
    await this.commit.run(() => this.uploads.forgetIntent(intent.itemId));
    this.reachable();
  }

  /** The clients are made, and the local store's endpoint asked for, on the first upload (a failure counts as the cloud's). */
  private s3(): Promise<S3Endpoints> {
    this.endpoints ??= this.connect().catch((error: Error) => {
      this.endpoints = undefined;
      throw error;
    });
    return this.endpoints;
  }

  private reachable(): void {
    this.backoffs.succeeded();
    this.trying = false;
    this.status.nextAttempt = null;
    if (this.status.online) return;
    this.status.online = true;
    this.status.refused = false;
    this.status.since = new Date(this.wallMs()).toISOString();
    this.log.info('cloud S3 reachable');
  }

  /** Logged when it starts and whenever the reason changes (a gateway that never reached the cloud says why). */
  private unreachable(reason: string): void {
    if (this.offline(reason, false)) this.log.warn({ reason }, 'cloud S3 unreachable; uploads wait');
  }

  /**
   * The cloud refuses the gateway's requests (401, 403: a wrong or expired key): every object would
   * get the same answer, so none is dead-lettered for it; the uploads wait, retried up to
   * cloud.s3.refusedRetryMaxMs apart, until the operator fixes the key. A policy's refusal of one
   * rule's uploads is the rule's (refuseRule).
   */
  private refusedBy(reason: string): void {
    if (this.offline(reason, true)) this.log.error({ reason }, 'cloud S3 refuses the uploads; they wait (check cloud.s3 credentials and the bucket policy)');
  }

  /** Whether this is news (the state or the reason changed). */
  private offline(reason: string, refused: boolean): boolean {
    const news = this.status.online || this.status.lastError !== reason || this.status.refused !== refused;
    this.status.lastError = reason;
    this.status.refused = refused;
    if (this.status.online) {
      this.status.online = false;
      this.status.since = new Date(this.wallMs()).toISOString();
    }
    return news;
  }

  /** Waits before the next attempt; `refused`: after a refusal of the gateway (see refusedBy). */
  private async backoff(refused = false): Promise<void> {
    const wait = this.backoffs.failed(refused);
    this.status.nextAttempt = this.backoffs.nextAttempt;
    await this.sleep(wait);
    this.backoffs.attempting();
    this.status.nextAttempt = null;
  }

  /** Until new work comes, an upload ends, `ms` passed or the uploader stops. */
  private async waitForChange(ms?: number): Promise<void> {
    this.idle = true;
    await this.sleep(ms);
    this.idle = false;
  }

  /** Until woken (or `ms` passed, or stopped). */
  private sleep(ms?: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.wakeUp?.(), ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
    });
  }
}

/** Whether the cloud's answer (or its silence) means "try again later". */
function isTransient(error: unknown): boolean {
  const status = statusOf(error);
  return status === undefined || status >= 500 || status === 429 || TRANSIENT_ERRORS.has((error as Error).name);
}

/**
 * A 403 that is not about the credentials (AccessDenied): a bucket or key policy, which may deny one
 * prefix only, so one rule's uploads rather than all (S3 answers every explicit or implicit deny so).
 */
function isRefusalOfTheRule(error: unknown): boolean {
  return !isTransient(error) && statusOf(error) === 403 && !CREDENTIAL_ERRORS.has((error as Error).name);
}

/** A refusal of the gateway rather than of one object: its credentials, or a policy (401, 403; an upload's AccessDenied is its rule's, isRefusalOfTheRule). */
function isRefusalOfTheGateway(error: unknown): boolean {
  const status = statusOf(error);
  return !isTransient(error) && (status === 401 || status === 403 || CREDENTIAL_ERRORS.has((error as Error).name));
}
