import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { TestDaemon } from './daemon.js';
import { outpost } from './mqtt.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** A new access key with the given grants, made through `outpost s3 keys add`. */
export async function addKey(daemon: TestDaemon, grants: string[] = ['--read-write', '*']): Promise<S3Credentials> {
  const run = await outpost(daemon.socket, ['s3', 'keys', 'add', ...grants, '--json']);
  if (run.code !== 0) throw new Error(`outpost s3 keys add failed: ${run.stderr}`);
  const { accessKeyId, secretAccessKey } = JSON.parse(run.stdout);
  return { accessKeyId, secretAccessKey };
}

/** A daemon on free ports, a read-write key, its SDK client and a bucket made with it; `cleanup` ends them all. */
export async function daemonWithBucket(bucket: string, config: Record<string, unknown> = {}) {
  const daemon = await TestDaemon.start({ config });
  const credentials = await addKey(daemon);
  const s3 = s3Client(daemon, credentials);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return { daemon, credentials, s3, cleanup: async () => { s3.destroy(); await daemon.cleanup(); } };
}

export function s3Endpoint(daemon: TestDaemon): string {
  return `http://127.0.0.1:${daemon.port('s3')}`;
}

/** An SDK v3 client against the daemon, path-style, with the SDK's default checksum behaviour. */
export function s3Client(daemon: TestDaemon, credentials: S3Credentials,
  options: { forcePathStyle?: boolean; endpoint?: string; httpAgent?: Agent; systemClockOffset?: number } = {}): S3Client {
  return new S3Client({
    // a daemon whose clock runs ahead (libfaketime) takes requests signed for its time
    systemClockOffset: options.systemClockOffset,
    endpoint: options.endpoint ?? s3Endpoint(daemon),
    region: 'us-east-1',
    forcePathStyle: options.forcePathStyle ?? true,
    credentials,
    maxAttempts: 1,
    requestHandler: { httpAgent: options.httpAgent ?? hintedKeepAlive() },
  });
}

/**
 * Keep-alive sockets closed once idle for the time the server's Keep-Alive header gives (less a
 * second), as Node's agent does only when it has a timeout of its own: a request sent on a socket
 * the server is closing at that moment is reset (RFC 9112 §9.3.1 leaves the retry to the client,
 * which these clients, at one attempt, do not make).
 */
function hintedKeepAlive(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 50, timeout: 60_000 });
}

/** Environment for the AWS CLI and boto3 (no config files, no IMDS lookups). */
export function awsEnv(daemon: TestDaemon, credentials: S3Credentials): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: s3Endpoint(daemon),
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  };
}
