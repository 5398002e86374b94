import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { eventually } from './helpers/eventually.js';
import { CloudS3 } from './helpers/cloud-s3.js';
import { expectCloudBody, gatewayConfig, startGateway, syncStatus, type Gateway } from './helpers/gateway.js';

/** Bytes the process has read with read system calls (files and sockets alike): /proc/PID/io's rchar. */
const bytesRead = (pid: number) => Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);

// An upload attempt the cloud does not take (the link down) cuts its read of the local object: read
// to its end and dropped, every attempt read the whole object while the cloud was away.
describe('sync: object uploads while the cloud is away', () => {
  let cloud: CloudS3;
  let gateway: Gateway;
  beforeAll(async () => {
    cloud = await CloudS3.create(['cloud']);
    await cloud.down();
    gateway = await startGateway(gatewayConfig(cloud, [{ name: 'videos', from: 'videos', to: 'cloud/videos/' }]));
  });
  afterAll(async () => {
    await gateway?.daemon.cleanup();
    await cloud?.destroy();
  });

  it('reads little of the local object at each failed attempt, and uploads it whole once the cloud is back', async () => {
    const { daemon, s3 } = gateway;
    const body = randomBytes(7 * 1024 * 1024);
    await s3.send(new CreateBucketCommand({ Bucket: 'videos' }));
    await s3.send(new PutObjectCommand({ Bucket: 'videos', Key: 'clip.mp4', Body: body }));
    await eventually(async () => (await syncStatus(daemon)).uploads.lastError !== null, 10_000, 100);
    // retryMinMs 100, retryMaxMs 500: some ten attempts in these 4 s; each read the object twice
    // over before (its file, then the local GET's answer), 14 MiB an attempt
    const before = bytesRead(daemon.process.pid!);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(bytesRead(daemon.process.pid!) - before).toBeLessThan(20 * 1024 * 1024);
    await cloud.up();
    await eventually(async () => (await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'videos')?.backlog === 0, 20_000, 200);
    await expectCloudBody(cloud, 'videos/clip.mp4', body);
  });
});
