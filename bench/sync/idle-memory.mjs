// Idle RSS of outpostd with and without a cloud: the same daemon started with no cloud, with sync
// rules but no cloud, with cloud.mqtt (connected to a Mosquitto on loopback), with cloud.s3 and an
// objects rule as well, and once more after one object was uploaded (to s3rver on loopback), each
// left idle. VmRSS is sampled once a second after a settling time; the
// median of the samples is reported.
//
//   npm run build && node bench/sync/idle-memory.mjs [--settle 10] [--samples 10] [--board minimal-128mb|none]
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnOutpostd } from '../lib/outpostd.mjs';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { MOSQUITTO_BIN, REPO_ROOT, loadBoardProfile } from '../lib/brokers.mjs';
import { freePort, memOf, stopChild, waitForPort } from '../lib/proc.mjs';
import { benchArgs } from '../lib/args.mjs';

const args = benchArgs(`usage: node bench/sync/idle-memory.mjs [options]

Idle RSS of outpostd without a cloud, with sync rules, with cloud.mqtt, with cloud.s3 and after one upload.`, {
  settle: { type: 'string', default: '10', help: 'seconds left idle before the samples' },
  samples: { type: 'string', default: '10', help: 'RSS samples, one a second; the median is reported' },
  board: { type: 'string', default: 'minimal-128mb', help: 'outpostd as board profile firmware-configs/boards/NAME.yaml runs it; "none": bare' },
});
const board = args.board === 'none' ? undefined : await loadBoardProfile(args.board);
if (board) Object.assign(process.env, board.environment);
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-idle-'));
chmodSync(dir, 0o777); // mosquitto started as root runs as user "mosquitto"
const cloudPort = await freePort();
writeFileSync(join(dir, 'mosquitto.conf'), `listener ${cloudPort} 127.0.0.1\nallow_anonymous true\nlog_dest none\n`);
const mosquitto = spawn(MOSQUITTO_BIN, ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
await waitForPort(cloudPort);
const s3rverPort = await freePort();
const s3rver = new S3rver({ port: s3rverPort, address: '127.0.0.1', directory: mkdtempSync(join(dir, 's3rver-')), silent: true, configureBuckets: [{ name: 'fleet' }] });
await s3rver.run();

const base = {
  log: { level: 'warn', format: 'json' },
  mqtt: { host: '127.0.0.1', port: 0 },
  http: { port: 0 },
  s3: { host: '127.0.0.1', port: 0 },
};
const rules = {
  outbound: [{ name: 'telemetry', from: 'sensors/#', to: 'gw/${topic}' }],
  inbound: [{ name: 'commands', from: 'commands/#' }],
  objects: [{ name: 'cams', from: 'cams' }],
};
const cloudMqtt = { url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'idle-gw' };
const cloudS3 = { endpoint: `http://127.0.0.1:${s3rverPort}`, bucket: 'fleet', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true };

/** Writes one object to the gateway's bucket "cams" and waits until the sync agent uploaded it. */
async function uploadOne(outpostd) {
  const outpost = (...command) => execFileSync(process.execPath, [join(REPO_ROOT, 'dist', 'bin', 'outpost.js'), '--socket', outpostd.socket, ...command], { encoding: 'utf8' });
  const credentials = JSON.parse(outpost('s3', 'keys', 'add', '--read-write', '*', '--json'));
  const local = new S3Client({ endpoint: `http://127.0.0.1:${outpostd.port('s3')}`, region: 'us-east-1', forcePathStyle: true, credentials });
  await local.send(new CreateBucketCommand({ Bucket: 'cams' }));
  await local.send(new PutObjectCommand({ Bucket: 'cams', Key: 'frame.jpg', Body: Buffer.alloc(256 * 1024, 1) }));
  local.destroy();
  for (let i = 0; i < 100 && JSON.parse(outpost('sync', 'status', '--json')).uploads.uploaded < 1; i++) await sleep(100);
}
const VARIANTS = [
  ['no cloud', base],
  ['sync rules, no cloud', { ...base, cloud: { s3: cloudS3 }, sync: rules }],
  ['cloud.mqtt connected + rules', { ...base, cloud: { mqtt: cloudMqtt }, sync: { ...rules, objects: [] } }],
  ['cloud.mqtt connected + cloud.s3 + rules', { ...base, cloud: { mqtt: cloudMqtt, s3: cloudS3 }, sync: rules }],
  ['the same after one upload', { ...base, cloud: { mqtt: cloudMqtt, s3: cloudS3 }, sync: rules }, uploadOne],
];

async function idleRss(name, config, before) {
  const runDir = mkdtempSync(join(dir, `${name}-`));
  const outpostd = await spawnOutpostd({ dir: runDir, config, nodeArgs: board?.nodeOptions ?? [] });
  try {
    await before?.(outpostd);
    await sleep(Number(args.settle) * 1000);
    const samples = [];
    for (let i = 0; i < Number(args.samples); i++) {
      samples.push(memOf(outpostd.pid).rss);
      await sleep(1000);
    }
    samples.sort((a, b) => a - b);
    return samples[Math.floor(samples.length / 2)];
  } finally {
    await stopChild(outpostd.child).catch(() => {});
  }
}

try {
  console.log(`idle RSS (median of ${args.samples} samples after ${args.settle} s), board ${board?.name ?? 'none'}`);
  let first;
  for (const [name, config, before] of VARIANTS) {
    const rss = await idleRss(name.replace(/\W+/g, '-'), config, before);
    first ??= rss;
    console.log(`  ${name.padEnd(42)} ${mb(rss)}${rss === first ? '' : `  (${rss >= first ? '+' : '−'}${mb(Math.abs(rss - first))})`}`);
  }
} finally {
  await stopChild(mosquitto).catch(() => {});
  await s3rver.close();
  rmSync(dir, { recursive: true, force: true });
}
