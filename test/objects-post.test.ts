import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { CreateBucketCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, awsEnv, s3Client, s3Endpoint, type S3Credentials } from './helpers/objects.js';
import { addThing, collectMessages, connectClient, subscribeGranted } from './helpers/mqtt.js';

const run = promisify(execFile);
const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

/** 20260524T000000Z and 20260524 for a moment. */
function amzDate(at: Date): { timestamp: string; date: string } {
  const timestamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return { timestamp, date: timestamp.slice(0, 8) };
}

/**
 * A browser-based POST form built by hand as the AWS docs describe it ("Example: Browser-Based
 * Upload using HTTP POST"): the policy in base64 and its SigV4 signature, with the scope fields.
 */
function signedForm(credentials: S3Credentials, bucket: string, fields: Record<string, string>, conditions: unknown[],
  options: { expiresInMs?: number; secret?: string } = {}): Record<string, string> {
  const { timestamp, date } = amzDate(new Date());
  const credential = `${credentials.accessKeyId}/${date}/us-east-1/s3/aws4_request`;
  const scopeFields = { 'x-amz-algorithm': 'AWS4-HMAC-SHA256', 'x-amz-credential': credential, 'x-amz-date': timestamp };
  const policy = Buffer.from(JSON.stringify({
    expiration: new Date(Date.now() + (options.expiresInMs ?? 300_000)).toISOString(),
    conditions: [{ bucket }, ...conditions, ...Object.entries(scopeFields).map(([name, value]) => ({ [name]: value }))],
  })).toString('base64');
  let key: Buffer | string = `AWS4${options.secret ?? credentials.secretAccessKey}`;
  for (const part of [date, 'us-east-1', 's3', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  return { ...fields, ...scopeFields, policy, 'x-amz-signature': createHmac('sha256', key).update(policy).digest('hex') };
}

/** POSTs a form (fields in order, then the file) to the bucket. */
async function post(endpoint: string, bucket: string, fields: Record<string, string>, file?: { content: Buffer | string; name?: string }): Promise<Response> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  if (file) form.append('file', new Blob([file.content]), file.name ?? 'upload.bin');
  return fetch(`${endpoint}/${bucket}`, { method: 'POST', body: form, redirect: 'manual' });
}

async function errorOf(response: Response): Promise<{ status: number; code: string | undefined; message: string | undefined }> {
  const text = await response.text();
  const unescape = (xml: string | undefined) => xml?.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  return { status: response.status, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1], message: unescape(/<Message>([^<]*)<\/Message>/.exec(text)?.[1]) };
}

describe('S3 POST Object: browser-based uploads signed with a POST policy', () => {
  let daemon: TestDaemon;
  let credentials: S3Credentials;
  let s3: S3Client;
  let endpoint: string;
  let bus: MqttClient;
  const share = (...path: string[]) => join(daemon.dataDir, 'share', 'forms', ...path);

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    credentials = await addKey(daemon);
    s3 = s3Client(daemon, credentials);
    endpoint = s3Endpoint(daemon);
    await s3.send(new CreateBucketCommand({ Bucket: 'forms' }));
    await addThing(daemon.socket, 'watcher', 'watcher-password', { subscribe: ['$outpost/objects/forms/events'], clientIds: ['watcher*'] });
    bus = await connectClient(daemon.mqttUrl, { clientId: 'watcher-1', username: 'watcher', password: 'watcher-password' });
    expect(await subscribeGranted(bus, ['$outpost/objects/forms/events'])).toEqual([1]);
  });
  afterAll(async () => {
    bus?.end(true);
    s3?.destroy();
    await daemon.cleanup();
  });

  it('takes a form made by boto3 generate_presigned_post, stores the file with its fields and records ObjectCreated:Post', async () => {
    const script = `
import boto3, botocore, json, os
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'], region_name='us-east-1',
                  config=botocore.config.Config(signature_version='s3v4', s3={'addressing_style': 'path'}))
fields = {'Content-Type': 'text/plain', 'x-amz-meta-camera': 'north', 'Cache-Control': 'max-age=60'}
conditions = [{'Content-Type': 'text/plain'}, {'x-amz-meta-camera': 'north'}, {'Cache-Control': 'max-age=60'}, ['content-length-range', 1, 1048576]]
print(json.dumps(s3.generate_presigned_post('forms', 'uploads/\${filename}', Fields=fields, Conditions=conditions, ExpiresIn=300)))
`;
    const { stdout } = await run('/usr/bin/python3', ['-c', script], { env: awsEnv(daemon, credentials), timeout: 30_000 });
    const presigned = JSON.parse(stdout) as { url: string; fields: Record<string, string> };
    expect(presigned.url).toBe(`${endpoint}/forms`);
    const events = collectMessages(bus, 1);
    // the event goes out once the object's file is in place: a reader of the share finds it
    const fileOnEvent = new Promise<boolean>((resolve) => bus.once('message', () => resolve(existsSync(share('uploads', 'note 1.txt')))));
    const body = 'a note from a browser';
    const response = await post(endpoint, 'forms', presigned.fields, { content: body, name: 'note 1.txt' });
    expect(response.status).toBe(204);
    expect(response.headers.get('etag')).toBe(`"${md5(body)}"`);
    expect(response.headers.get('location')).toBe(`${endpoint}/forms/uploads%2Fnote%201.txt`);
    expect(readFileSync(share('uploads', 'note 1.txt'), 'utf8')).toBe(body);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'forms', Key: 'uploads/note 1.txt' }));
    expect(head).toMatchObject({ ContentType: 'text/plain', CacheControl: 'max-age=60', Metadata: { camera: 'north' }, ContentLength: body.length });
    const [message] = await events;
    expect(await fileOnEvent).toBe(true);
    const record = JSON.parse(message.payload).Records[0];
    expect(record).toMatchObject({ eventName: 'ObjectCreated:Post', userIdentity: { principalId: `AWS:${credentials.accessKeyId}` },
      s3: { bucket: { name: 'forms' }, object: { key: 'uploads/note+1.txt', size: body.length, eTag: md5(body) } } });
  });

  it('answers as success_action_status and success_action_redirect ask, streaming a large file across the boundary search', async () => {
    const big = randomBytes(6 * 1024 * 1024 + 3);
    // the boundary's lead-in inside the content must not end it
    big.write('\r\n--\r\n--', 4096, 'latin1');
    const created = await post(endpoint, 'forms', signedForm(credentials, 'forms', { key: 'big/${filename}', success_action_status: '201' },
      [['starts-with', '$key', 'big/'], { success_action_status: '201' }]), { content: big, name: 'big.bin' });
    expect(created.status).toBe(201);
    expect(await created.text()).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
      + `<Location>${endpoint}/forms/big%2Fbig.bin</Location><Bucket>forms</Bucket><Key>big/big.bin</Key><ETag>&quot;${md5(big)}&quot;</ETag></PostResponse>`);
    expect(md5(readFileSync(share('big', 'big.bin')))).toBe(md5(big));

    const ok = await post(endpoint, 'forms', signedForm(credentials, 'forms', { key: 'plain.txt', success_action_status: '200', 'x-ignore-note': 'fields named x-ignore-* need no condition' },
      [{ key: 'plain.txt' }, { success_action_status: '200' }]), { content: 'plain' });
    expect([ok.status, await ok.text()]).toEqual([200, '']);

    const redirected = await post(endpoint, 'forms', signedForm(credentials, 'forms', { key: 'moved.txt', success_action_redirect: 'http://example.test/done?from=form' },
      [{ key: 'moved.txt' }, ['starts-with', '$success_action_redirect', 'http://example.test/']]), { content: 'moved' });
    expect(redirected.status).toBe(303);
    expect(redirected.headers.get('location')).toBe(`http://example.test/done?from=form&bucket=forms&key=moved.txt&etag=%22${md5('moved')}%22`);
    expect(readFileSync(share('moved.txt'), 'utf8')).toBe('moved');
  });

  it('sends back metadata fields that are not US-ASCII as RFC 2047 words of their UTF-8, other fields as the bytes of their UTF-8, and refuses line breaks in them', async () => {
    const fields = { key: 'unicode/report.pdf', 'x-amz-meta-title': '日本の報告', 'content-disposition': 'attachment; filename="日本.pdf"' };
    const conditions = [['starts-with', '$key', 'unicode/'], ['starts-with', '$x-amz-meta-title', ''], ['starts-with', '$content-disposition', '']];
    const stored = await post(endpoint, 'forms', signedForm(credentials, 'forms', fields, conditions), { content: 'pdf bytes' });
    expect(stored.status).toBe(204);
    for (const method of ['GET', 'HEAD']) {
      const answer = await fetch(await getSignedUrl(s3, method === 'GET' ? new GetObjectCommand({ Bucket: 'forms', Key: 'unicode/report.pdf' }) : new HeadObjectCommand({ Bucket: 'forms', Key: 'unicode/report.pdf' })), { method });
      expect(answer.status).toBe(200);
      // fetch reads header bytes as latin1
      const utf8 = (name: string) => Buffer.from(answer.headers.get(name)!, 'latin1').toString('utf8');
      expect(answer.headers.get('x-amz-meta-title')).toBe(`=?UTF-8?B?${Buffer.from('日本の報告').toString('base64')}?=`);
      expect(utf8('content-disposition')).toBe('attachment; filename="日本.pdf"');
    }
    // a control character Node refuses to send, stored, made every read of the object answer 500
    for (const [name, value] of [['x-amz-meta-title', 'two\r\nlines'], ['content-type', 'text/plain\u007f'], ['cache-control', 'a\u0001b'], ['x-amz-website-redirect-location', '/a\u0001b']]) {
      const field = { [name]: value };
      const broken = await post(endpoint, 'forms', signedForm(credentials, 'forms', { ...fields, key: 'unicode/broken.pdf', ...field }, [...conditions, ['starts-with', `$${name}`, '']]), { content: 'x' });
      expect(await errorOf(broken), JSON.stringify(field)).toMatchObject({ status: 400, code: 'InvalidArgument' });
      expect(await s3.send(new HeadObjectCommand({ Bucket: 'forms', Key: 'unicode/broken.pdf' })).catch((error) => error.name)).toBe('NotFound');
    }
  });

  it('gives the object the tags of the form\'s tagging field (a Tagging document), and refuses ones S3 refuses', async () => {
    const tagging = '<Tagging><TagSet><Tag><Key>camera</Key><Value>gate 2</Value></Tag></TagSet></Tagging>';
    const stored = await post(endpoint, 'forms', signedForm(credentials, 'forms', { key: 'tagged/photo.jpg', tagging }, [{ key: 'tagged/photo.jpg' }, { tagging }]), { content: 'jpeg' });
    expect(stored.status).toBe(204);
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: 'forms', Key: 'tagged/photo.jpg' }))).TagSet).toEqual([{ Key: 'camera', Value: 'gate 2' }]);
    for (const [bad, code] of [['<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>', 'InvalidTag'], ['<Tagging>', 'MalformedXML']]) {
      const refused = await post(endpoint, 'forms', signedForm(credentials, 'forms', { key: 'tagged/refused.jpg', tagging: bad }, [{ key: 'tagged/refused.jpg' }, { tagging: bad }]), { content: 'jpeg' });
      expect(await errorOf(refused)).toMatchObject({ status: 400, code });
    }
    expect(await s3.send(new HeadObjectCommand({ Bucket: 'forms', Key: 'tagged/refused.jpg' })).catch((error) => error.name)).toBe('NotFound');
  });

  it('refuses forms the policy does not allow, with S3\'s errors, and stores nothing', async () => {
    const refused = async (response: Response, expected: { status: number; code: string; message?: string }) => {
      expect(await errorOf(response)).toMatchObject(expected);
    };
    const keyed = (extra: Record<string, string> = {}) => ({ key: 'denied/file.txt', ...extra });
    const allowKey = [['starts-with', '$key', 'denied/']];
    const file = { content: 'should not be stored' };

    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', keyed(), allowKey, { expiresInMs: -1000 }), file),
      { status: 403, code: 'AccessDenied', message: 'Invalid according to Policy: Policy expired.' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', { key: 'elsewhere/file.txt' }, allowKey), file),
      { status: 403, code: 'AccessDenied', message: 'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "denied/"]' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', keyed({ 'x-amz-meta-extra': '1' }), allowKey), file),
      { status: 403, code: 'AccessDenied', message: 'Invalid according to Policy: Extra input fields: x-amz-meta-extra' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'other-bucket', keyed(), allowKey), file),
      { status: 403, code: 'AccessDenied', message: 'Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "other-bucket"]' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', keyed(), allowKey, { secret: 'not-the-secret' }), file),
      { status: 403, code: 'SignatureDoesNotMatch' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', keyed(), [...allowKey, ['content-length-range', 1, 5]]), file),
      { status: 400, code: 'EntityTooLarge' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', keyed(), [...allowKey, ['content-length-range', 100, 200]]), file),
      { status: 400, code: 'EntityTooSmall' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', keyed(), allowKey)),
      { status: 400, code: 'InvalidArgument', message: 'POST requires exactly one file upload per request.' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', {}, allowKey), file),
      { status: 400, code: 'InvalidArgument', message: "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields." });
    // unsigned, signed the SigV2 way, by a key that may only read
    await refused(await post(endpoint, 'forms', keyed(), file), { status: 403, code: 'AccessDenied', message: 'Access Denied' });
    await refused(await post(endpoint, 'forms', keyed({ AWSAccessKeyId: credentials.accessKeyId, signature: 'c2lnbmF0dXJl', policy: 'e30=' }), file),
      { status: 400, code: 'InvalidRequest', message: 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.' });
    const reader = await addKey(daemon, ['--read', 'forms']);
    await refused(await post(endpoint, 'forms', signedForm(reader, 'forms', keyed(), allowKey), file), { status: 403, code: 'AccessDenied' });
    // not a form; fields too long before the file; a body cut before the file's closing delimiter
    await refused(await fetch(`${endpoint}/forms`, { method: 'POST', body: 'key=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      { status: 412, code: 'PreconditionFailed' });
    await refused(await post(endpoint, 'forms', signedForm(credentials, 'forms', keyed({ 'x-ignore-padding': 'p'.repeat(21 * 1024) }), allowKey), file),
      { status: 400, code: 'MaxPostPreDataLengthExceeded' });
    const fields = signedForm(credentials, 'forms', keyed(), allowKey);
    const cut = Buffer.from([...Object.entries(fields).map(([name, value]) => `--B\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
      '--B\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nthe content, and then no delimiter'].join(''));
    await refused(await fetch(`${endpoint}/forms`, { method: 'POST', body: cut, headers: { 'content-type': 'multipart/form-data; boundary=B' } }),
      { status: 400, code: 'MalformedPOSTRequest' });
    expect(existsSync(share('denied'))).toBe(false);
    expect(existsSync(share('elsewhere'))).toBe(false);
  });
  it('checks and keeps the checksums a form names (x-amz-checksum-*), and computes the one x-amz-checksum-algorithm asks for', async () => {
    const content = randomBytes(100_000);
    const sha256 = createHash('sha256').update(content).digest('base64');
    const form = (key: string, fields: Record<string, string>) => signedForm(credentials, 'forms', { key, ...fields },
      [{ key }, ...Object.entries(fields).map(([name, value]) => ({ [name]: value }))]);
    const checked = await post(endpoint, 'forms', form('sums/checked.bin', { 'x-amz-checksum-sha256': sha256 }), { content });
    expect([checked.status, checked.headers.get('x-amz-checksum-sha256')]).toEqual([204, sha256]);
    // the SDK checks the download against it
    const got = await s3.send(new GetObjectCommand({ Bucket: 'forms', Key: 'sums/checked.bin', ChecksumMode: 'ENABLED' }));
    expect([got.ChecksumSHA256, got.ChecksumType]).toEqual([sha256, 'FULL_OBJECT']);
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(content)).toBe(true);

    const computed = await post(endpoint, 'forms', form('sums/computed.bin', { 'x-amz-checksum-algorithm': 'CRC32' }), { content });
    const crc32 = Buffer.alloc(4);
    crc32.writeUInt32BE(zlibCrc32(content));
    expect([computed.status, computed.headers.get('x-amz-checksum-crc32')]).toEqual([204, crc32.toString('base64')]);

    const wrong = await post(endpoint, 'forms', form('sums/wrong.bin', { 'x-amz-checksum-sha256': createHash('sha256').update('other').digest('base64') }), { content });
    expect(await errorOf(wrong)).toEqual({ status: 400, code: 'BadDigest', message: 'The SHA256 you specified did not match the calculated checksum.' });
    const malformed = await post(endpoint, 'forms', form('sums/malformed.bin', { 'x-amz-checksum-sha256': 'not base64 of 32 bytes' }), { content });
    expect(await errorOf(malformed)).toEqual({ status: 400, code: 'InvalidRequest', message: 'Value for x-amz-checksum-sha256 header is invalid.' });
    expect(existsSync(share('sums', 'wrong.bin'))).toBe(false);
    expect(existsSync(share('sums', 'malformed.bin'))).toBe(false);
  });
});
