import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { addKey, s3Client } from './helpers/objects.js';
import { CloudS3, S3RVER_KEY } from './helpers/cloud-s3.js';

const MiB = 1024 * 1024;

describe('sync: a multipart upload whose item left the outbox', () => {
  let cloud: CloudS3;
  beforeAll(async () => {
    cloud = await CloudS3.create(['cloud']);
  });
  afterAll(async () => {
    await cloud?.destroy();
  });

  it('is aborted in the cloud once the link is back, also with no other upload queued', async () => {
    await cloud.up();
    const daemon = await TestDaemon.start({
      config: {
        cloud: { s3: { endpoint: cloud.endpoint, bucket: 'cloud', forcePathStyle: true, ...S3RVER_KEY, retryMinMs: 100, retryMaxMs: 300, partBytes: 5 * MiB, maxBytesPerSecond: 4 * MiB } },
        sync: { objects: [{ name: 'big', from: 'big', to: 'cloud/orphan/', ttlSeconds: 4 }] },
      },
    });
    try {
      const s3 = s3Client(daemon, await addKey(daemon));
      await s3.send(new CreateBucketCommand({ Bucket: 'big' }));
      await s3.send(new PutObjectCommand({ Bucket: 'big', Key: 'video.bin', Body: randomBytes(11 * MiB) }));
      const parts = () => cloud.requestsFor('PUT', 'cloud/orphan/video.bin').filter((request) => request.query.has('partNumber'));
      // Part 1 is confirmed before part 2 starts: the link goes down with the upload half done.
      await eventually(() => parts().some((request) => request.query.get('partNumber') === '2'), 15_000);
      await cloud.down();
      const uploadId = parts()[0].query.get('uploadId');
      // The item's 4 s run out while the cloud is unreachable: expired, counted, and nothing else is queued.
      await eventually(async () => {
        const status = JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
        return status.rules.find((rule: any) => rule.rule === 'big').expired === 1;
      }, 10_000, 200);
      await cloud.up();
      // AbortMultipartUpload of that upload (s3rver answers it 405, not implementing it: the request is what counts here)
      const aborts = () => cloud.requestsFor('DELETE', 'cloud/orphan/video.bin').filter((request) => request.query.get('uploadId') === uploadId);
      await eventually(() => aborts().some((request) => request.status !== undefined), 10_000, 100).catch(() => undefined);
      expect(aborts().length).toBeGreaterThan(0);
    } finally {
      await daemon.cleanup();
    }
  });
});
