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

/** The local S3 API's requests of one operation so far, from the daemon's metrics (the sync agent reads each object to upload through it). */
async function localRequests(daemon: TestDaemon, operation: 'GetObject' | 'HeadObject'): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
  return [...metrics.matchAll(new RegExp(`^outpost_s3_requests_total\\{operation="${operation}",status="\\d+"\\} (\\d+)$`, 'gm'))]
    .reduce((sum, match) => sum + Number(match[1]), 0);
}

// An upload attempt the cloud does not take (the link down) does not read the local object: it asks
// for its content only once the cloud's connection is up. Read to its end and dropped, every attempt
// read the whole object while the cloud was away; cut when the cloud refused, still the megabytes
// that had filled the local connection's socket buffers meanwhile.
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
    // retryMinMs 100, retryMaxMs 500: some ten attempts in these 4 s, each a local HeadObject (the
    // object's metadata, for the cloud request's headers); each read 3-7 MiB of it before
    const readBefore = bytesRead(daemon.process.pid!);
    const [headsBefore, getsBefore] = [await localRequests(daemon, 'HeadObject'), await localRequests(daemon, 'GetObject')];
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const attempts = (await localRequests(daemon, 'HeadObject')) - headsBefore;
    expect(attempts).toBeGreaterThan(0);
    expect(await localRequests(daemon, 'GetObject')).toBe(getsBefore);
    expect((bytesRead(daemon.process.pid!) - readBefore) / attempts).toBeLessThan(64 * 1024);
    await cloud.up();
    await eventually(async () => (await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'videos')?.backlog === 0, 20_000, 200);
    await expectCloudBody(cloud, 'videos/clip.mp4', body);
  });
});
