// outpostd's memory under the AWS CLI's own transfers: `aws s3 cp` of a large file (multipart, up to
// 10 parts at once, each an aws-chunked body with a CRC trailer, sent in 8 KiB writes) and back.
// Prints, per round, the peak VmRSS and what it was made of (file-backed pages: node's own and its
// libraries'; malloc's main heap; other anonymous memory: V8's heaps, large buffers, thread arenas
// and stacks), VmRSS after it with malloc's heap apart, then VmRSS once the daemon has been idle.
// `node bench/objects/aws-cli-rss.mjs [--rounds 3 --mib 64]`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { installExitHooks, memOf, onExit, stopChild } from '../lib/proc.mjs';
import { spawnOutpostd } from '../lib/outpostd.mjs';
import { loadBoardProfile } from '../lib/brokers.mjs';
import { benchArgs } from '../lib/args.mjs';

const options = benchArgs(`usage: node bench/objects/aws-cli-rss.mjs [options]

outpostd's RSS under \`aws s3 cp\` of a large file up and down, round after round: each round's
peak and what it is made of (file-backed, malloc heap, other anonymous memory).`, {
  rounds: { type: 'string', default: '3', help: 'rounds of one upload and one download' },
  mib: { type: 'string', default: '64', help: 'size of the file, MiB' },
  board: { type: 'string', default: 'minimal-128mb', help: 'outpostd as board profile firmware-configs/boards/NAME.yaml runs it; "none": bare' },
  aws: { type: 'string', default: 'aws', help: 'the AWS CLI to run' },
  dist: { type: 'string', help: 'another build of outpostd to measure (e.g. an earlier commit\'s dist/)' },
  idle: { type: 'string', default: '15', help: 'seconds without requests before the last reading' },
});
installExitHooks();
const work = mkdtempSync(join(tmpdir(), 'outpost-aws-cli-rss-'));
onExit(() => rmSync(work, { recursive: true, force: true }));
const board = options.board === 'none' ? null : await loadBoardProfile(options.board);
const daemon = await spawnOutpostd({ dir: work, board, ...(options.dist ? { dist: options.dist } : {}), config: {
  log: { level: 'warn', format: 'json' }, mqtt: { host: '127.0.0.1', port: 0 }, http: { port: 0 }, s3: { host: '127.0.0.1', port: 0 },
} });
// the key the daemon keeps for its CLI: full access
const endpoint = await daemon.admin('/v1/s3/endpoint');

const file = join(work, 'upload.bin');
writeFileSync(file, randomBytes(Number(options.mib) * 1024 * 1024));
const env = {
  ...process.env, AWS_ACCESS_KEY_ID: endpoint.accessKeyId, AWS_SECRET_ACCESS_KEY: endpoint.secretAccessKey, AWS_DEFAULT_REGION: endpoint.region,
  AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
};
const aws = (...args) => new Promise((resolve, reject) => {
  const child = spawn(options.aws, ['--endpoint-url', `http://127.0.0.1:${daemon.port('s3')}`, ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  child.on('error', reject);
  child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`aws ${args.join(' ')} exited with ${code}`))));
});
const mib = (bytes) => (bytes / 1048576).toFixed(1);
/**
 * Resident bytes by kind of mapping: `file` (the node binary's and libraries' pages), `heap`
 * (malloc's main heap: memory freed there stays resident unless it is at the heap's top) and `anon`
 * (the rest: V8's heaps, buffers of their own mmap, other threads' malloc arenas, stacks).
 */
const residentByKind = () => {
  const bytes = { file: 0, heap: 0, anon: 0 };
  let kind = 'anon';
  for (const line of readFileSync(`/proc/${daemon.pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) kind = mapping[1] === '[heap]' ? 'heap' : mapping[1].startsWith('/') ? 'file' : 'anon';
    else if (line.startsWith('Rss:')) bytes[kind] += Number(line.split(/\s+/)[1]) * 1024;
  }
  return bytes;
};
const mallocHeapBytes = () => residentByKind().heap;
const makeUp = ({ file, heap, anon }) => `${mib(file + heap + anon)} = file-backed ${mib(file)} + malloc heap ${mib(heap)} + other anonymous ${mib(anon)}`;
/**
 * The peak VmRSS while `work` runs (sampled every 20 ms), and its make-up read from smaps right
 * after that sample: a spike gone within that reading (a few ms) shows there as a smaller total.
 */
async function peakDuring(work) {
  let peak = memOf(daemon.pid).rss;
  let madeOf = residentByKind();
  const timer = setInterval(() => {
    const rss = memOf(daemon.pid).rss ?? 0;
    if (rss <= peak) return;
    peak = rss;
    madeOf = residentByKind();
  }, 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return { peak, madeOf };
}

const lines = [`outpostd (${options.board}), aws s3 cp of ${options.mib} MiB up and down, ${options.rounds} rounds`,
  `at start: RSS ${mib(memOf(daemon.pid).rss)} MiB, malloc heap ${mib(mallocHeapBytes())} MiB`];
await aws('s3api', 'create-bucket', '--bucket', 'bench');
for (let round = 1; round <= Number(options.rounds); round++) {
  const up = await peakDuring(() => aws('s3', 'cp', file, `s3://bench/round-${round}.bin`, '--quiet'));
  const down = await peakDuring(() => aws('s3', 'cp', `s3://bench/round-${round}.bin`, join(work, 'download.bin'), '--quiet'));
  lines.push(`round ${round}: peak RSS up ${mib(up.peak)} MiB, down ${mib(down.peak)} MiB; after: RSS ${mib(memOf(daemon.pid).rss)} MiB, malloc heap ${mib(mallocHeapBytes())} MiB`,
    `  made of (smaps) up: ${makeUp(up.madeOf)} MiB; down: ${makeUp(down.madeOf)} MiB`);
}
await sleep(Number(options.idle) * 1000);
lines.push(`after ${options.idle} s idle: RSS ${mib(memOf(daemon.pid).rss)} MiB, malloc heap ${mib(mallocHeapBytes())} MiB`);
console.log(lines.join('\n'));
await stopChild(daemon.child);
