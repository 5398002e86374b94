import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, DeleteObjectCommand, DeleteObjectTaggingCommand, GetObjectTaggingCommand, PutObjectCommand, PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import { eventually } from './helpers/eventually.js';
import { CloudS3 } from './helpers/cloud-s3.js';
import { gatewayConfig, startGateway, syncStatus } from './helpers/gateway.js';

const MiB = 1024 * 1024;

describe('sync: object tags to cloud S3', () => {
  let cloud: CloudS3;
  beforeAll(async () => {
    cloud = await CloudS3.create(['cloud']);
  });
  afterAll(async () => {
    await cloud?.destroy();
  });

  const cloudTags = async (key: string) => (await cloud.client.send(new GetObjectTaggingCommand({ Bucket: 'cloud', Key: key }))).TagSet;
  const sent = (method: string, key: string) => cloud.requestsFor(method, `cloud/${key}`);

  it('sends an object\'s tags with it (single and multipart) and their later changes, after its upload; a rule with tags: false sends none', async () => {
    const config = gatewayConfig(cloud, [
      { name: 'tagged', from: 'farm/', to: 'cloud/tagged/' },
      { name: 'untagged', from: 'farm/', to: 'cloud/untagged/', tags: false },
    ], { cloudS3: { partBytes: 5 * MiB } });
    await cloud.up();
    const { daemon, s3 } = await startGateway(config);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'farm' }));
      await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'small.csv', Body: '21.5', Tagging: 'site=north%20field&kind=temp' }));
      await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'big.bin', Body: randomBytes(6 * MiB), Tagging: 'size=large' }));
      await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'plain.txt', Body: 'no tags' }));
      await eventually(async () => (await cloud.keys('cloud')).length === 6, 20_000);
      // s3rver keeps no x-amz-tagging of a PUT: what went is read off the request, as AWS S3 would store it
      expect(sent('PUT', 'tagged/small.csv').map((request) => request.headers['x-amz-tagging'])).toEqual(['site=north%20field&kind=temp']);
      expect(sent('POST', 'tagged/big.bin').filter((request) => request.query.has('uploads')).map((request) => request.headers['x-amz-tagging'])).toEqual(['size=large']);
      expect(sent('PUT', 'tagged/plain.txt').map((request) => request.headers['x-amz-tagging'])).toEqual([undefined]);
      for (const key of ['untagged/small.csv', 'untagged/plain.txt']) expect(sent('PUT', key).map((request) => request.headers['x-amz-tagging'])).toEqual([undefined]);

      await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'small.csv', Tagging: { TagSet: [{ Key: 'state', Value: 'checked' }, { Key: 'by', Value: 'Jürgen' }] } }));
      await eventually(async () => (await cloudTags('tagged/small.csv')).length === 2, 15_000);
      expect(await cloudTags('tagged/small.csv')).toEqual([{ Key: 'state', Value: 'checked' }, { Key: 'by', Value: 'Jürgen' }]);
      await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'farm', Key: 'small.csv' }));
      await eventually(async () => sent('PUT', 'tagged/small.csv').filter((request) => request.query.has('tagging')).length === 2, 15_000);
      expect(await cloudTags('tagged/small.csv')).toEqual([]);
      // the object itself went once, to each rule's place; the other rule sent no tags
      expect(sent('PUT', 'tagged/small.csv').filter((request) => !request.query.has('tagging'))).toHaveLength(1);
      expect(sent('PUT', 'untagged/small.csv')).toHaveLength(1);
      const status = await syncStatus(daemon);
      expect(status.uploads).toMatchObject({ uploaded: 6 });
      expect(status.rules.find((rule: any) => rule.rule === 'tagged')).toMatchObject({ backlog: 0, deadLettered: 0 });
    } finally {
      await daemon.cleanup();
    }
  });

  it('tags the cloud object after an upload that waited for the link, and drops a change of an object the cloud no longer has', async () => {
    await cloud.down();
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [{ name: 'later', from: 'later', to: 'cloud/later/' }]));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'later' }));
      await s3.send(new PutObjectCommand({ Bucket: 'later', Key: 'a.txt', Body: 'a', Tagging: 'v=1' }));
      await s3.send(new PutObjectTaggingCommand({ Bucket: 'later', Key: 'a.txt', Tagging: { TagSet: [{ Key: 'v', Value: '2' }] } }));
      await eventually(async () => (await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'later')?.backlog === 2);
      await cloud.up();
      await eventually(async () => (await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'later')?.backlog === 0, 20_000);
      // the upload read the tags then (v=2), and the change's item after it set them again
      expect(sent('PUT', 'later/a.txt').filter((request) => !request.query.has('tagging')).map((request) => request.headers['x-amz-tagging'])).toEqual(['v=2']);
      expect(await cloudTags('later/a.txt')).toEqual([{ Key: 'v', Value: '2' }]);

      // a change of an object the cloud no longer has finds nothing to tag: dropped, not retried
      await cloud.client.send(new DeleteObjectCommand({ Bucket: 'cloud', Key: 'later/a.txt' }));
      await s3.send(new PutObjectTaggingCommand({ Bucket: 'later', Key: 'a.txt', Tagging: { TagSet: [{ Key: 'v', Value: '3' }] } }));
      await eventually(() => daemon.logs.some((line) => line.msg === 'upload skipped' && /no such object to tag/.test(line.reason)), 20_000);
      expect((await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'later')).toMatchObject({ backlog: 0, deadLettered: 0 });
      expect(await cloud.keys('cloud')).not.toContain('later/a.txt');
    } finally {
      await daemon.cleanup();
    }
  });
});
