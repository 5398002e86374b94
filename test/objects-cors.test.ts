import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  type CORSRule, DeleteBucketCorsCommand, GetBucketCorsCommand, GetObjectCommand, PutBucketCorsCommand, PutObjectCommand, type S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { TestDaemon } from './helpers/daemon.js';
import { awsEnv, daemonWithBucket, s3Client, s3Endpoint, type S3Credentials } from './helpers/objects.js';

const run = promisify(execFile);

async function failure(request: Promise<unknown>): Promise<{ code: string; message: string; status?: number }> {
  const error = await request.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(S3ServiceException);
  const s3 = error as S3ServiceException;
  return { code: s3.name, message: s3.message, status: s3.$metadata.httpStatusCode };
}

const NOT_ALLOWED = 'CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method '
  + "or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
const VARY = 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method';

describe('bucket CORS configuration (S3 Put/Get/DeleteBucketCors) and browsers\' requests', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let credentials: S3Credentials;
  const url = (path: string) => `${s3Endpoint(daemon)}${path}`;
  const corsOf = (response: Response) => Object.fromEntries([...response.headers].filter(([name]) => name.startsWith('access-control-') || name === 'vary'));
  const errorOf = async (response: Response) => {
    const text = await response.text();
    return { status: response.status, code: /<Code>([^<]*)</.exec(text)?.[1], message: /<Message>([^<]*)</.exec(text)?.[1]?.replaceAll('&apos;', "'") };
  };

  const rules: CORSRule[] = [
    { ID: 'dashboard', AllowedOrigins: ['http://dashboard.farm.local:8080'], AllowedMethods: ['GET', 'PUT', 'POST'], AllowedHeaders: ['content-type', 'x-amz-*'],
      ExposeHeaders: ['ETag', 'x-amz-request-id'], MaxAgeSeconds: 600 },
    { AllowedOrigins: ['http://*.farm.local'], AllowedMethods: ['GET', 'HEAD'] },
    { AllowedOrigins: ['*'], AllowedMethods: ['HEAD'] },
  ];

  beforeAll(async () => {
    ({ daemon, s3, credentials } = await daemonWithBucket('photos'));
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cow.jpg', Body: 'jpeg' }));
  });
  // the daemon of the end: the test restarts it
  afterAll(async () => {
    s3?.destroy();
    await daemon?.cleanup();
  });

  it('stores a configuration, returns it as given, keeps it through kill -9, and deletes it', async () => {
    expect(await failure(s3.send(new GetBucketCorsCommand({ Bucket: 'photos' }))))
      .toEqual({ code: 'NoSuchCORSConfiguration', message: 'The CORS configuration does not exist', status: 404 });
    await s3.send(new PutBucketCorsCommand({ Bucket: 'photos', CORSConfiguration: { CORSRules: rules } }));
    expect((await s3.send(new GetBucketCorsCommand({ Bucket: 'photos' }))).CORSRules).toEqual(rules);
    await daemon.kill();
    s3.destroy();
    daemon = await TestDaemon.start({ config: {}, dataDir: daemon.dataDir });
    s3 = s3Client(daemon, credentials);
    expect((await s3.send(new GetBucketCorsCommand({ Bucket: 'photos' }))).CORSRules).toEqual(rules);
    expect((await s3.send(new DeleteBucketCorsCommand({ Bucket: 'photos' }))).$metadata.httpStatusCode).toBe(204);
    expect((await failure(s3.send(new GetBucketCorsCommand({ Bucket: 'photos' })))).code).toBe('NoSuchCORSConfiguration');
    await s3.send(new PutBucketCorsCommand({ Bucket: 'photos', CORSConfiguration: { CORSRules: rules } }));
  });

  it('refuses what S3 refuses and keeps the configuration it had', async () => {
    const refusals: Array<[CORSRule[], { code: string; message?: string }]> = [
      [[{ AllowedOrigins: ['*'], AllowedMethods: ['PATCH'] }], { code: 'InvalidRequest', message: 'Found unsupported HTTP method in CORS config. Unsupported method is PATCH' }],
      [[{ AllowedOrigins: ['http://*.*.local'], AllowedMethods: ['GET'] }], { code: 'InvalidRequest', message: 'AllowedOrigin "http://*.*.local" can not have more than one wildcard.' }],
      [[{ AllowedOrigins: ['*'], AllowedMethods: ['GET'], AllowedHeaders: ['x-*-*'] }], { code: 'InvalidRequest', message: 'AllowedHeader "x-*-*" can not have more than one wildcard.' }],
      [[{ AllowedOrigins: ['*'], AllowedMethods: ['GET'], ExposeHeaders: ['*'] }],
        { code: 'InvalidRequest', message: 'ExposeHeader "*" contains wildcard. We currently do not support wildcard for ExposeHeader.' }],
      // sent as a header on every cross-origin answer: a value Node refuses to send made each of them 500
      ...['a\r\nSet-Cookie: z=1', 'x-\u4e2d', 'a\u007fb', 'two words'].map((name): [CORSRule[], { code: string; message?: string }] =>
        [[{ AllowedOrigins: ['*'], AllowedMethods: ['GET'], ExposeHeaders: [name] }], { code: 'InvalidRequest', message: `ExposeHeader "${name.trim()}" is not a valid header name.` }]),
      [Array.from({ length: 101 }, () => ({ AllowedOrigins: ['*'], AllowedMethods: ['GET'] })), { code: 'MalformedXML' }],
      [[{ AllowedOrigins: [], AllowedMethods: ['GET'] }], { code: 'MalformedXML' }],
    ];
    for (const [CORSRules, refusal] of refusals) {
      expect(await failure(s3.send(new PutBucketCorsCommand({ Bucket: 'photos', CORSConfiguration: { CORSRules } }))), JSON.stringify(CORSRules).slice(0, 80))
        .toMatchObject({ status: 400, ...refusal });
    }
    expect((await s3.send(new GetBucketCorsCommand({ Bucket: 'photos' }))).CORSRules).toEqual(rules);
  });

  it('answers a preflight by the first rule allowing its origin, method and headers, and refuses the others', async () => {
    const preflight = (path: string, origin: string, method: string, headers?: string) => fetch(url(path), { method: 'OPTIONS', headers: {
      origin, 'access-control-request-method': method, ...(headers ? { 'access-control-request-headers': headers } : {}),
    } });
    const dashboard = await preflight('/photos/cow.jpg', 'http://dashboard.farm.local:8080', 'PUT', 'Content-Type, X-Amz-Date, x-amz-content-sha256');
    expect(dashboard.status).toBe(200);
    expect(corsOf(dashboard)).toEqual({
      'access-control-allow-origin': 'http://dashboard.farm.local:8080', 'access-control-allow-methods': 'GET, PUT, POST',
      'access-control-allow-headers': 'content-type, x-amz-date, x-amz-content-sha256', 'access-control-expose-headers': 'ETag, x-amz-request-id',
      'access-control-max-age': '600', 'access-control-allow-credentials': 'true', vary: VARY,
    });
    const barn = await preflight('/photos', 'http://barn.farm.local', 'GET');
    expect(corsOf(barn)).toEqual({
      'access-control-allow-origin': 'http://barn.farm.local', 'access-control-allow-methods': 'GET, HEAD', 'access-control-allow-credentials': 'true', vary: VARY,
    });
    const anyone = await preflight('/photos/cow.jpg', 'https://elsewhere.example', 'HEAD');
    expect(corsOf(anyone)).toEqual({ 'access-control-allow-origin': '*', 'access-control-allow-methods': 'HEAD', vary: VARY });
    const refused = { status: 403, code: 'AccessForbidden', message: NOT_ALLOWED };
    // another origin, a method its rules do not allow, a header none allows
    expect(await errorOf(await preflight('/photos/cow.jpg', 'https://elsewhere.example', 'GET'))).toEqual(refused);
    expect(await errorOf(await preflight('/photos/cow.jpg', 'http://barn.farm.local', 'PUT'))).toEqual(refused);
    expect(await errorOf(await preflight('/photos/cow.jpg', 'http://barn.farm.local', 'GET', 'x-custom'))).toEqual(refused);
    expect(corsOf(await preflight('/photos/cow.jpg', 'https://elsewhere.example', 'GET'))).toEqual({});
  });

  it('adds the CORS headers a rule allows to the answers of a page\'s requests, errors too, and none for other origins', async () => {
    const signed = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'cow.jpg' }), { expiresIn: 60 });
    const fromDashboard = await fetch(signed, { headers: { origin: 'http://dashboard.farm.local:8080' } });
    expect([fromDashboard.status, await fromDashboard.text()]).toEqual([200, 'jpeg']);
    expect(corsOf(fromDashboard)).toEqual({
      'access-control-allow-origin': 'http://dashboard.farm.local:8080', 'access-control-allow-methods': 'GET, PUT, POST',
      'access-control-expose-headers': 'ETag, x-amz-request-id', 'access-control-max-age': '600', 'access-control-allow-credentials': 'true', vary: VARY,
    });
    const missing = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'no-such.jpg' }), { expiresIn: 60 }), { headers: { origin: 'http://barn.farm.local' } });
    expect(missing.status).toBe(404);
    expect(corsOf(missing)['access-control-allow-origin']).toBe('http://barn.farm.local');
    const stranger = await fetch(signed, { headers: { origin: 'https://elsewhere.example' } });
    expect(stranger.status).toBe(200);
    expect(corsOf(stranger)).toEqual({});
    expect(corsOf(await fetch(signed))).toEqual({});
  });

  it('aws s3api put-bucket-cors and get-bucket-cors round trip', async () => {
    const env = awsEnv(daemon, credentials);
    const aws = async (...args: string[]) => (await run('/usr/bin/aws', ['--endpoint-url', s3Endpoint(daemon), '--output', 'json', 's3api', ...args], { env, timeout: 60_000 })).stdout;
    const configuration = { CORSRules: [{ AllowedOrigins: ['http://tablet.farm.local'], AllowedMethods: ['GET'], AllowedHeaders: ['*'], MaxAgeSeconds: 60 }] };
    await aws('put-bucket-cors', '--bucket', 'photos', '--cors-configuration', JSON.stringify(configuration));
    expect(JSON.parse(await aws('get-bucket-cors', '--bucket', 'photos'))).toEqual(configuration);
    await aws('delete-bucket-cors', '--bucket', 'photos');
  });
});
