// The floor under a small PUT on this machine: a bare Node HTTP server that only takes the body's MD5
// and answers 200 with the ETag, driven by the objects bench's own client (16 connections, 4 KiB,
// closed loops). Prints its ops/s and its CPU per request, to set beside outpostd's
// (`profile.mjs --plain`). `node bench/objects/bare-http.mjs [--seconds 5]`
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { cpuMsOf, installExitHooks, stopChild } from '../lib/proc.mjs';
import { S3BenchClient } from './s3-client.mjs';
import { benchArgs } from '../lib/args.mjs';

if (process.argv[2] === '--serve') {
  const server = http.createServer((req, res) => {
    const md5 = createHash('md5');
    req.on('data', (chunk) => md5.update(chunk));
    req.on('end', () => {
      res.writeHead(200, { ETag: `"${md5.digest('hex')}"` });
      res.end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const options = benchArgs(`usage: node bench/objects/bare-http.mjs [options]

The floor of run.mjs's 4 KiB PUTs: a bare Node HTTP server that answers them with an MD5, the same client.`, {
    seconds: { type: 'string', default: '5', help: 'seconds of PUTs, measured' },
  });
  installExitHooks();
  const child = fork(new URL(import.meta.url).pathname, ['--serve']);
  const port = await new Promise((resolve) => child.once('message', resolve));
  const s3 = new S3BenchClient({ port, accessKeyId: 'bench', secretAccessKey: 'bench' });
  const body = Buffer.alloc(4096, 1);
  const before = cpuMsOf(child.pid);
  const until = Date.now() + Number(options.seconds) * 1000;
  let answered = 0;
  await Promise.all(Array.from({ length: 16 }, async (_, worker) => {
    for (let i = 0; Date.now() < until; i++) {
      await s3.request('PUT', `/bench/w${worker}-${i}`, { body });
      answered++;
    }
  }));
  const cpuMs = cpuMsOf(child.pid) - before;
  s3.close();
  await stopChild(child);
  console.log(`bare Node HTTP + MD5: ${Math.round(answered / Number(options.seconds))} PUTs/s, server CPU ${(cpuMs * 1000 / answered).toFixed(0)} µs per request`);
}
