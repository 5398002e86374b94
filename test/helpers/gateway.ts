// A gateway for the object sync tests: an outpostd uploading to the stand-in cloud S3 (CloudS3),
// with a client of its local S3 API, and its `outpost sync status --json`.
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { S3Client } from '@aws-sdk/client-s3';
import { TestDaemon } from './daemon.js';
import { eventually } from './eventually.js';
import { outpost } from './mqtt.js';
import { addKey, s3Client } from './objects.js';
import { S3RVER_KEY, type CloudS3 } from './cloud-s3.js';

export interface Gateway { daemon: TestDaemon; s3: S3Client }

/** Uploads to `cloud`'s bucket "cloud" (key prefix gw1/ by default), retried 100-500 ms apart. */
export function gatewayConfig(cloud: CloudS3, objects: Array<Record<string, unknown>>, extra: { cloudS3?: Record<string, unknown>; sync?: Record<string, unknown> } = {}) {
  return {
    cloud: { s3: { endpoint: cloud.endpoint, bucket: 'cloud', prefix: 'gw1/', forcePathStyle: true, ...S3RVER_KEY, retryMinMs: 100, retryMaxMs: 500, ...extra.cloudS3 } },
    sync: { objects, ...extra.sync },
  };
}

export async function startGateway(config: Record<string, unknown>, dataDir?: string): Promise<Gateway> {
  const daemon = await TestDaemon.start({ config, dataDir });
  const s3 = s3Client(daemon, await addKey(daemon));
  return { daemon, s3 };
}

export async function syncStatus(daemon: TestDaemon): Promise<any> {
  const run = await outpost(daemon.socket, ['sync', 'status', '--json']);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

/**
 * s3rver answers a PUT (and lists the key) once it has read the body, before its file is written:
 * read the cloud copy (of bucket "cloud") until it is complete.
 */
export async function expectCloudBody(cloud: CloudS3, key: string, expected: Buffer): Promise<void> {
  const latest = async () => md5(await cloud.body('cloud', key));
  await eventually(async () => (await latest()) === md5(expected), 5000, 100).catch(() => undefined);
  expect(await latest()).toBe(md5(expected));
}
