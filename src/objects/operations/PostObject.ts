import type { ServerResponse } from 'node:http';
import { errors } from '../errors.js';
import { formBoundary, readForm, type Form } from '../form-data.js';
import { checkPolicy, parsePolicy } from '../post-policy.js';
import { missingField } from '../../auth/sigv4-post.js';
import { checkTags, documentTags, type Tags } from '../tags.js';
import { el, MAX_MARKUP, parseXml } from '../xml.js';
import { asHeaderValue, changeOrigin, header, quoted, sendEmpty, sendXml, STORED_HEADERS, storedHeaders, userMetadata, type Operation, type S3Request } from './context.js';
import { checkEventQueue, checksumAlgorithmOf, checksumHeaders, checksumInto, checkWriteHeaders, contentMd5, contentType } from './writing.js';
import { checksumClaims, type ChecksumAlgorithm } from '../../auth/checksums.js';

/** S3 POST Object: the form fields before the file are at most this long (MaxPostPreDataLengthExceeded). */
const MAX_FIELD_BYTES = 20 * 1024;

/**
 * S3 POST Object, the browser-based upload: a multipart/form-data body whose fields stand for
 * PutObject's headers (key, Content-Type, x-amz-meta-*, Cache-Control, …), signed with a SigV4 POST
 * policy; the `file` field, last, is the content. Stored and acknowledged as PutObject is, with an
 * `ObjectCreated:Post` event.
 */
export const postObject: Operation = async (request, res, context) => {
  const boundary = formBoundary(header(request, 'content-type'));
  if (!boundary) throw errors.preconditionFailed('Bucket POST must be of the enclosure-type multipart/form-data');
  checkEventQueue(context);
  const form = await readForm(request.body, boundary, MAX_FIELD_BYTES);
  const signer = context.formSigner(form.fields) ?? request.accessKeyId;
  // the form's fields in place of headers: the PutObject steps read them from there
  const asPut: S3Request = { ...request, accessKeyId: signer, headers: fieldsAsHeaders(form.fields) };
  context.authorize(asPut, request.bucket, 'write');
  // the form's `acl` field stands for x-amz-acl
  checkWriteHeaders({ ...asPut, headers: { ...asPut.headers, 'x-amz-acl': form.fields.get('acl') } });
  const tags = await formTags(form.fields.get('tagging'));
  context.objects.existingBucket(request.bucket);
  const { file } = form;
  if (!file) throw errors.invalidArgument('POST requires exactly one file upload per request.', 'file', '0');
  const key = objectKey(form, file.filename);
  const fields = new Map(form.fields).set('key', key);
  const policy = form.fields.get('policy');
  const sizeRange = policy === undefined ? undefined : checkPolicy(parsePolicy(policy), fields, request.bucket, Date.now());
  const checksums: Record<string, string> = {};
  const content = formChecksums(asPut).reduce((body, { algorithm, expected }) => checksumInto(body, algorithm, checksums, expected), file.content);
  const object = await context.objects.put(request.bucket, key, content, {
    contentType: contentType(asPut),
    metadata: userMetadata(asPut.headers),
    headers: storedHeaders(asPut.headers),
    checksums,
    tags,
    contentMd5: contentMd5(asPut),
    sizeRange,
    eventName: 'ObjectCreated:Post',
    origin: changeOrigin(asPut),
  });
  await form.discardRest();
  respond(res, form.fields, { location: `${request.origin}/${request.bucket}/${encodeURIComponent(key)}`, bucket: request.bucket, key, etag: quoted(object.etag) },
    checksumHeaders(object.checksums, 'object'));
};

/** S3 POST Object: the `tagging` field is a Tagging document, as PutObjectTagging's body. */
async function formTags(field: string | undefined): Promise<Tags | undefined> {
  return field === undefined ? undefined : checkTags(documentTags(await parseXml(field, MAX_MARKUP.configuration)));
}

/**
 * The checksums a form asks for, as PutObject's headers do: each `x-amz-checksum-<algorithm>` field
 * checked against the file (BadDigest) and kept with the object, and `x-amz-checksum-algorithm`
 * without its value (as minio-go's post policies send it too) computed and kept.
 */
function formChecksums(asPut: S3Request): Array<{ algorithm: ChecksumAlgorithm; expected?: string }> {
  const claims: Array<{ algorithm: ChecksumAlgorithm; expected?: string }> = checksumClaims(asPut.headers);
  const asked = checksumAlgorithmOf(asPut);
  if (asked && !claims.some((claim) => claim.algorithm === asked)) claims.push({ algorithm: asked });
  return claims;
}

/**
 * The form's fields as the headers of a PutObject: those stored and sent back as headers (metadata,
 * Content-Type, Content-Disposition, …) as header values, so `filename="日本.pdf"` is sent back on
 * GET as it would be had it come in a header.
 */
function fieldsAsHeaders(fields: ReadonlyMap<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of fields) headers[name] = becomesHeader(name) ? asHeaderValue(name, value) : value;
  return headers;
}

function becomesHeader(name: string): boolean {
  return name.startsWith('x-amz-meta-') || name === 'content-type' || STORED_HEADERS.includes(name);
}

/** The `key` field, `${filename}` standing for the file's name (S3 POST Object). */
function objectKey(form: Form, filename: string): string {
  const key = form.fields.get('key');
  if (!key) throw missingField('key');
  return key.replaceAll('${filename}', filename);
}

/**
 * success_action_redirect (or the older `redirect`): 303 to that URL with bucket, key and etag
 * appended to its query; otherwise success_action_status 200 (empty), 201 (a PostResponse
 * document) or 204, the default for any other value.
 */
function respond(res: ServerResponse, fields: ReadonlyMap<string, string>, stored: { location: string; bucket: string; key: string; etag: string },
  checksums: Record<string, string>): void {
  const headers = { ETag: stored.etag, Location: stored.location, ...checksums };
  const redirect = redirectUrl(fields.get('success_action_redirect') ?? fields.get('redirect'));
  if (redirect) {
    for (const [name, value] of Object.entries({ bucket: stored.bucket, key: stored.key, etag: stored.etag })) redirect.searchParams.append(name, value);
    sendEmpty(res, 303, { ...headers, Location: redirect.href });
    return;
  }
  const status = fields.get('success_action_status');
  if (status === '201') {
    sendXml(res, 201, 'PostResponse', [el('Location', stored.location), el('Bucket', stored.bucket), el('Key', stored.key), el('ETag', stored.etag)], headers);
    return;
  }
  sendEmpty(res, status === '200' ? 200 : 204, headers);
}

/** A redirect target S3 follows: an absolute http(s) URL; anything else is ignored as S3 ignores it. */
function redirectUrl(text: string | undefined): URL | undefined {
  if (!text) return undefined;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}
