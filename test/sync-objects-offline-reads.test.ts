import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { eventually } from './helpers/eventually.js';
import { CloudS3 } from './helpers/cloud-s3.js';
import type { TestDaemon } from './helpers/daemon.js';
import { expectCloudBody, gatewayConfig, startGateway, syncStatus, type Gateway } from './helpers/gateway.js';

/** Bytes the process has read with read system calls (files and sockets alike): /proc/PID/io's rchar. */
const bytesRead = (pid: number) => Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);

/** The local S3 API's GetObject requests so far, from the daemon's metrics (the sync agent reads each object to upload through it). */
async function localGets(daemon: TestDaemon): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
  return [...metrics.matchAll(/^outpost_s3_requests_total\{operation="GetObject",status="\d+"\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

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
    // retryMinMs 100, retryMaxMs 500: some ten attempts in these 4 s, each a local GetObject; each
    // read the object twice over before (its file, then the local GET's answer), 14 MiB an attempt
    const readBefore = bytesRead(daemon.process.pid!);
    const getsBefore = await localGets(daemon);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const attempts = (await localGets(daemon)) - getsBefore;
    expect(attempts).toBeGreaterThan(0);
    expect((bytesRead(daemon.process.pid!) - readBefore) / attempts).toBeLessThan(body.length);
    await cloud.up();
    await eventually(async () => (await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'videos')?.backlog === 0, 20_000, 200);
    await expectCloudBody(cloud, 'videos/clip.mp4', body);
  });
});
