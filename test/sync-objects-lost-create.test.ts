import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { addKey, s3Client } from './helpers/objects.js';
import { CloudS3 } from './helpers/cloud-s3.js';

const MiB = 1024 * 1024;
const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

/**
 * The cloud S3 is a second outpostd (its S3 API lists multipart uploads, which s3rver does not),
 * behind the recording proxy that loses the first CreateMultipartUpload's answer: the cloud has
 * made the upload, and the gateway never learnt its UploadId.
 */
describe('sync: a CreateMultipartUpload whose answer was lost', () => {
  let cloudDaemon: TestDaemon;
  let cloudS3: S3Client;
  let proxy: CloudS3;
  let credentials: { accessKeyId: string; secretAccessKey: string };

  beforeAll(async () => {
    cloudDaemon = await TestDaemon.start();
    credentials = await addKey(cloudDaemon);
    // a copy to the SDK, which marks the credentials object it is given
    cloudS3 = s3Client(cloudDaemon, { ...credentials });
    await cloudS3.send(new CreateBucketCommand({ Bucket: 'cloud' }));
    proxy = await CloudS3.inFrontOf(cloudDaemon.port('s3'));
    await proxy.up();
  });

  afterAll(async () => {
    await proxy?.destroy();
    cloudS3?.destroy();
    await cloudDaemon?.cleanup();
  });

  it('leaves no upload behind in the cloud: the lost one is found and aborted, the object arrives once', async () => {
    let lost = 0;
    proxy.loseAnswer = (request) => request.method === 'POST' && request.query.has('uploads') && lost++ === 0;
    const gateway = await TestDaemon.start({
      config: {
        cloud: { s3: { endpoint: proxy.endpoint, bucket: 'cloud', forcePathStyle: true, ...credentials, retryMinMs: 100, retryMaxMs: 300, partBytes: 5 * MiB } },
        sync: { objects: [{ name: 'big', from: 'big', to: 'cloud/videos/' }] },
      },
    });
    try {
      const local = s3Client(gateway, await addKey(gateway));
      await local.send(new CreateBucketCommand({ Bucket: 'big' }));
      const data = randomBytes(6 * MiB);
      await local.send(new PutObjectCommand({ Bucket: 'big', Key: 'clip.bin', Body: data }));
      await eventually(async () => (await status(gateway)).rules.find((rule: any) => rule.rule === 'big')?.backlog === 0, 30_000, 200);
      const creates = proxy.requestsFor('POST', 'cloud/videos/clip.bin').filter((request) => request.query.has('uploads'));
      expect(creates).toHaveLength(2);
      // the first CreateMultipartUpload made an upload whose id only the cloud knows: aborted, not left to cost storage
      const left = await cloudS3.send(new ListMultipartUploadsCommand({ Bucket: 'cloud' }));
      expect(left.Uploads ?? []).toEqual([]);
      expect(proxy.requests.filter((request) => request.method === 'GET' && request.query.has('uploads'))).toHaveLength(1);
      const object = await cloudS3.send(new GetObjectCommand({ Bucket: 'cloud', Key: 'videos/clip.bin' }));
      expect(Buffer.from(await object.Body!.transformToByteArray()).equals(data)).toBe(true);
      expect((await status(gateway)).rules.find((rule: any) => rule.rule === 'big')).toMatchObject({ deadLettered: 0 });
    } finally {
      proxy.loseAnswer = () => false;
      await gateway.cleanup();
    }
  });
});
