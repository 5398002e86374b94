import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
const ROOT = '/work/wt/sync';
const dir = mkdtempSync('/tmp/crashrepro/d-');
writeFileSync(`${dir}/c.yaml`, 'log: { level: info, format: json }\nmqtt: { host: 127.0.0.1, port: 0 }\nhttp: { port: 0 }\ns3: { host: 127.0.0.1, port: 19123 }\n');
const child = spawn(process.execPath, [`${ROOT}/dist/bin/outpostd.js`, '--config', `${dir}/c.yaml`, '--data-dir', `${dir}/data`], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = ''; child.stdout.on('data', (c) => { out += c; });
child.on('exit', (code) => console.log('DAEMON EXIT', code, out.split('\n').filter((l) => l.includes('uncaught')).join('\n').slice(0, 600)));
await sleep(3000);
const key = JSON.parse(execFileSync(process.execPath, [`${ROOT}/dist/bin/outpost.js`, '--socket', `${dir}/data/admin.sock`, 's3', 'keys', 'add', '--read-write', '*', '--json'], { encoding: 'utf8' }));
const s3 = new S3Client({ endpoint: 'http://127.0.0.1:19123', region: 'us-east-1', forcePathStyle: true, credentials: key });
await s3.send(new CreateBucketCommand({ Bucket: 'b' }));
await s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'big', Body: Buffer.alloc(11 * 1024 * 1024, 7) }));
for (let i = 0; i < 5; i++) {
  const got = await s3.send(new GetObjectCommand({ Bucket: 'b', Key: 'big', Range: 'bytes=0-5242879' }));
  const body = got.Body;
  await new Promise((resolve) => body.once('data', resolve));
  body.destroy();
  await sleep(300);
}
await sleep(1000);
console.log('alive?', child.exitCode === null);
child.kill();
