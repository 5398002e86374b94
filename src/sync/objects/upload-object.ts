import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { GroupCommit } from '../../store/group-commit.js';
import type { ObjectRef } from './object-bridge.js';
import type { S3Endpoints } from './s3-endpoints.js';
import { S3RequestError, type ObjectHead, type ObjectTags } from './s3-client.js';
import { MeteredStream, type ByteBucket } from './metered-stream.js';
import type { MultipartState, UploadIntent, UploadState } from './upload-state.js';

/**
 * S3 refuses a request signed more than 15 minutes off its own clock (RequestTimeTooSkewed), so an
 * upload the cloud created for a request is initiated no earlier than this before its signing time.
 */
const MAX_CLOCK_SKEW_MS = 15 * 60_000;

/** The local object was deleted or replaced since its event: nothing to upload (a newer event covers a newer version). */
export class ObjectGone extends Error {}
/** The local object store did not answer as expected (busy, stopping): try again later. */
export class LocalUnavailable extends Error {}
/** This item failed in a way a retry may fix (ETag mismatch, lost multipart upload); counted, then dead-lettered. */
export class ItemFailed extends Error {}

export interface UploadContext {
  s3: S3Endpoints;
  uploads: UploadState;
  commit: GroupCommit;
  partBytes: number;
  verifyEtag: boolean;
  bandwidth: ByteBucket;
  /** Bytes sent to the cloud, as they go. */
  sent: (bytes: number) => void;
  /** The cloud took a request of the upload (created it, confirmed a part): it takes uploads, before the object is done. */
  accepted: () => void;
  signal: AbortSignal;
}

/**
 * One object to the cloud: a single PutObject up to cloud.s3.partBytes, else a multipart upload
 * that resumes after the parts already confirmed (sync_upload_parts). Every body is read from the
 * local S3 API with If-Match on the event's ETag, so only that version is ever sent, and every
 * ETag the cloud returns is compared with the MD5 of what was sent.
 */
export async function uploadObject(itemId: number, ref: ObjectRef, context: UploadContext): Promise<void> {
  const resumed = context.uploads.of(itemId);
  if (resumed === undefined && ref.size <= context.partBytes) return putWhole(ref, context);
  const upload = resumed ?? await createUpload(itemId, ref, context);
  try {
    await sendMissingParts(itemId, ref, upload, context);
    await completeUpload(ref, upload, context);
  } catch (error) {
    // The cloud no longer knows the upload (aborted by a lifecycle rule, say): the next attempt starts over.
    if ((error as Error).name !== 'NoSuchUpload') throw error;
    await context.commit.run(() => context.uploads.forget(itemId));
    throw new ItemFailed(`NoSuchUpload: the cloud lost multipart upload ${upload.uploadId}; starting over`);
  }
}

async function putWhole(ref: ObjectRef, context: UploadContext): Promise<void> {
  const local = await headLocal(ref, context);
  const tags = await tagsToSend(ref, local, context);
  let body: MeteredStream | undefined;
  try {
    const etag = await context.s3.cloud.putObject(ref.cloudBucket, ref.cloudKey, async () => (body = await readMetered(ref, context)), ref.size, {
      contentType: local.contentType, metadata: local.metadata, tags,
      // S3 PutObject: Content-MD5 lets the cloud refuse a body damaged on the way (BadDigest)
      contentMd5: isMd5(ref.etag) ? Buffer.from(ref.etag, 'hex').toString('base64') : undefined,
    }, context.signal);
    verifyEtag(context, 'PutObject', etag, body!.md5());
  } catch (error) {
    throw asItemFailure(error);
  } finally {
    body?.destroy();
  }
}

async function createUpload(itemId: number, ref: ObjectRef, context: UploadContext): Promise<MultipartState> {
  const { cloud } = context.s3;
  const head = await headLocal(ref, context);
  head.tags = await tagsToSend(ref, head, context);
  // committed first: should the answer be lost (the link cut after the cloud created the upload), the upload is looked for and aborted (findLostUploads)
  const intent = { itemId, bucket: ref.cloudBucket, key: ref.cloudKey, requestedWall: cloud.signingTimeMs() };
  await context.commit.run(() => context.uploads.intend(intent));
  const uploadId = await cloud.createMultipartUpload(ref.cloudBucket, ref.cloudKey, head, context.signal);
  const upload: MultipartState = { uploadId, partBytes: context.partBytes, parts: new Map() };
  await context.commit.run(() => context.uploads.begin(itemId, ref.cloudBucket, ref.cloudKey, upload.uploadId, upload.partBytes));
  context.accepted();
  return upload;
}

/** The local object's tags, when the rule sends them and it has some; read as the upload starts (a later change comes as an item of its own). */
async function tagsToSend(ref: ObjectRef, head: ObjectHead, context: UploadContext): Promise<ObjectTags | undefined> {
  if (!ref.tags || !head.tagCount) return undefined;
  return localRequest(() => context.s3.local.getObjectTagging(ref.bucket, ref.key, context.signal));
}

/**
 * An object's changed tags to the cloud object (PutObjectTagging; none there removes them). The
 * local object gone, or no cloud object to tag (its upload is still to come, or failed), is
 * ObjectGone: an upload sends the tags the object has then.
 */
export async function sendTags(ref: ObjectRef, context: UploadContext): Promise<void> {
  const tags = await localRequest(() => context.s3.local.getObjectTagging(ref.bucket, ref.key, context.signal));
  try {
    await context.s3.cloud.putObjectTagging(ref.cloudBucket, ref.cloudKey, tags, context.signal);
  } catch (error) {
    if (statusOf(error) === 404 && (error as Error).name === 'NoSuchKey') throw new ObjectGone('the cloud has no such object to tag: its upload sends the tags');
    throw error;
  }
}

/** S3 UploadPart for each part not confirmed yet; each confirmation is committed before the next part starts. */
async function sendMissingParts(itemId: number, ref: ObjectRef, upload: MultipartState, context: UploadContext): Promise<void> {
  for (let partNumber = 1; partNumber <= partCount(ref, upload); partNumber++) {
    if (upload.parts.has(partNumber)) continue;
    const start = (partNumber - 1) * upload.partBytes;
    const end = Math.min(ref.size, start + upload.partBytes) - 1;
    let body: MeteredStream | undefined;
    try {
      const etag = await context.s3.cloud.uploadPart(ref.cloudBucket, ref.cloudKey, upload.uploadId, partNumber,
        async () => (body = await readMetered(ref, context, `bytes=${start}-${end}`)), end - start + 1, context.signal);
      const part = { etag: etag ?? '', md5: body!.md5() };
      verifyEtag(context, `UploadPart ${partNumber}`, etag, part.md5);
      await context.commit.run(() => context.uploads.partDone(itemId, partNumber, part));
      upload.parts.set(partNumber, part);
      context.accepted();
    } catch (error) {
      throw asItemFailure(error);
    } finally {
      body?.destroy();
    }
  }
}

async function completeUpload(ref: ObjectRef, upload: MultipartState, context: UploadContext): Promise<void> {
  const count = partCount(ref, upload);
  const parts = Array.from({ length: count }, (_, index) => ({ partNumber: index + 1, etag: upload.parts.get(index + 1)!.etag }));
  let etag: string | undefined;
  try {
    etag = await context.s3.cloud.completeMultipartUpload(ref.cloudBucket, ref.cloudKey, upload.uploadId, parts, context.signal);
  } catch (error) {
    // A complete whose answer the link lost made the object and ended the upload: its retry gets
    // NoSuchUpload (AWS) or an internal error (s3rver). The object with these parts' ETag is that success.
    const status = statusOf(error);
    if ((status === 404 || (status !== undefined && status >= 500)) && await completedBefore(ref, upload, count, context)) return;
    throw asItemFailure(error);
  }
  if (!context.verifyEtag) return;
  // AWS S3: the MD5 of the parts' binary MD5s, "-", the part count; some S3-compatible stores (s3rver) return the whole object's MD5.
  const expected = unquoted(etag).includes('-') ? multipartEtag(upload, count) : await wholeMd5(ref, context);
  verifyEtag(context, 'CompleteMultipartUpload', etag, expected);
}

/** S3 multipart ETag: the MD5 of the parts' binary MD5s, "-", the part count. */
function multipartEtag(upload: MultipartState, count: number): string {
  const md5s = Array.from({ length: count }, (_, index) => Buffer.from(upload.parts.get(index + 1)!.md5, 'hex'));
  return `${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${count}`;
}

/** Whether the cloud already holds the object of these parts: its ETag in the multipart form, or the whole MD5. */
async function completedBefore(ref: ObjectRef, upload: MultipartState, count: number, context: UploadContext): Promise<boolean> {
  let etag: string;
  try {
    // no If-Match: not every S3-compatible store honours it (s3rver does not); the ETag is compared here
    etag = unquoted((await context.s3.cloud.headObject(ref.cloudBucket, ref.cloudKey, undefined, context.signal)).etag);
  } catch {
    return false;
  }
  return etag === multipartEtag(upload, count) || etag === await wholeMd5(ref, context);
}

/** Deletes the local object if it is still the version uploaded (HeadObject If-Match, then DeleteObject If-Match). */
export async function deleteLocalCopy(ref: ObjectRef, context: Pick<UploadContext, 's3' | 'signal'>): Promise<'deleted' | 'changed'> {
  const { local } = context.s3;
  try {
    await localRequest(() => local.headObject(ref.bucket, ref.key, quoted(ref.etag), context.signal));
    await localRequest(() => local.deleteObject(ref.bucket, ref.key, quoted(ref.etag), context.signal));
    return 'deleted';
  } catch (error) {
    if (error instanceof ObjectGone) return 'changed';
    throw error;
  }
}

/** Aborts a multipart upload in the cloud (its item left the outbox); a missing upload is fine. */
export async function abortUpload(s3: S3Endpoints, upload: { bucket: string; key: string; uploadId: string }, signal?: AbortSignal): Promise<void> {
  try {
    await s3.cloud.abortMultipartUpload(upload.bucket, upload.key, upload.uploadId, signal);
  } catch (error) {
    if ((error as Error).name !== 'NoSuchUpload') throw error;
  }
}

/**
 * The uploads a CreateMultipartUpload whose answer was lost may have left in the cloud: S3
 * ListMultipartUploads of its key, those initiated since its signing time (less the clock skew S3
 * allows). Another writer's upload of the same key started in that window would be taken too:
 * the keys under a rule's prefix are taken to be the gateway's own.
 */
export async function findLostUploads(s3: S3Endpoints, intent: UploadIntent, signal?: AbortSignal): Promise<Array<{ bucket: string; key: string; uploadId: string }>> {
  const uploads = await s3.cloud.listMultipartUploads(intent.bucket, intent.key, signal);
  return uploads
    .filter((upload) => upload.key === intent.key && Date.parse(upload.initiated) >= intent.requestedWall - MAX_CLOCK_SKEW_MS)
    .map((upload) => ({ bucket: intent.bucket, key: upload.key, uploadId: upload.uploadId }));
}

function readLocal(ref: ObjectRef, context: UploadContext, range?: string): Promise<ObjectHead & { body: Readable }> {
  return localRequest(() => context.s3.local.getObject(ref.bucket, ref.key, { ifMatch: quoted(ref.etag), range }, context.signal));
}

function headLocal(ref: ObjectRef, context: UploadContext): Promise<ObjectHead> {
  return localRequest(() => context.s3.local.headObject(ref.bucket, ref.key, quoted(ref.etag), context.signal));
}

/** The local object's content (or a range of it) as it goes to the cloud: opened once the cloud's connection is up (OpenBody). */
async function readMetered(ref: ObjectRef, context: UploadContext, range?: string): Promise<MeteredStream> {
  return metered((await readLocal(ref, context, range)).body, context);
}

/** The MD5 of the whole local object (for a cloud that answers a multipart upload with one). */
async function wholeMd5(ref: ObjectRef, context: UploadContext): Promise<string> {
  if (isMd5(ref.etag)) return ref.etag;
  const { body } = await readLocal(ref, context);
  const hash = createHash('md5');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A request to the local object store: 404 or 412 mean the version of the event is gone; anything else is temporary. */
async function localRequest<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    const status = statusOf(error);
    if (status === 404 || status === 412) throw new ObjectGone(`the local object changed or was deleted (${(error as Error).name})`);
    if ((error as Error).name === 'AbortError') throw error;
    throw new LocalUnavailable(`local object store: ${(error as Error).name}: ${(error as Error).message}`);
  }
}

function metered(body: Readable, context: UploadContext): MeteredStream {
  const meter = new MeteredStream(context.bandwidth, context.sent);
  body.on('error', (error) => meter.destroy(error));
  body.pipe(meter);
  // The cloud request ended first (link down, refused): the local answer is cut rather than read
  // to its end and dropped, which read the whole object from the disk at every failed attempt
  // (7 MiB of garbage buffers each, tens of MB of RSS until V8 collected them, while the cloud was away).
  meter.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  return meter;
}

function verifyEtag(context: UploadContext, operation: string, etag: string | undefined, md5: string): void {
  if (!context.verifyEtag) return;
  if (unquoted(etag) !== md5) throw new ItemFailed(`ETagMismatch: ${operation} returned ETag ${etag ?? '(none)'}, the data sent has ${md5}`);
}

/** The cloud refused a body damaged on the way (Content-MD5): a retry of this item may fix it. */
function asItemFailure(error: unknown): unknown {
  return (error as Error).name === 'BadDigest' ? new ItemFailed(`BadDigest: ${(error as Error).message}`) : error;
}

/** The HTTP status of an S3 error answer; undefined when there was no answer (network, timeout). */
export function statusOf(error: unknown): number | undefined {
  return error instanceof S3RequestError ? error.status : undefined;
}

function partCount(ref: ObjectRef, upload: MultipartState): number {
  return Math.max(1, Math.ceil(ref.size / upload.partBytes));
}

function isMd5(etag: string): boolean {
  return /^[0-9a-f]{32}$/.test(etag);
}

const quoted = (etag: string) => `"${etag}"`;
const unquoted = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');
