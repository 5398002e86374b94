import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { invoke, template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';

// A worker thread shares the daemon's process: what its handler does must not end the daemon.
describe('worker-thread handlers the daemon survives', () => {
  let daemon: TestDaemon;
  const cleanups: Array<() => void> = [];

  beforeAll(async () => {
    // a log that does not rotate over the test: every line kept is counted
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true }, functions: { logFileBytes: 256 * 1024 * 1024 } } });
    const pkg = writePackage({
      'template.yaml': template('Flood', { Handler: 'index.handler', Timeout: 30 }) ,
      'index.js': [
        // synchronous: it writes faster than the daemon's log takes it
        'exports.handler = async (event) => {',
        '  if (event.post) { require("node:worker_threads").parentPort?.postMessage(null); require("node:worker_threads").parentPort?.postMessage({ no: "type" }); for (const output of [5, null, undefined, {}]) require("node:worker_threads").parentPort?.postMessage({ type: "output", output }); return "posted"; }',
        '  const chunk = "L".repeat(1023) + "\\n";',
        '  for (let i = 0; i < event.kib; i++) process.stdout.write(chunk);',
        '  return "logged";',
        '};',
      ].join('\n'),
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
  });

  // the rotated file first (logs.ts keeps one)
  const functionLog = () => ['function.log.1', 'function.log']
    .map((file) => join(daemon.dataDir, 'functions', 'Flood', 'logs', file))
    .filter((file) => existsSync(file)).map((file) => readFileSync(file, 'utf8')).join('');

  afterAll(async () => {
    for (const cleanup of cleanups) cleanup();
    await daemon?.cleanup();
  });

  it('drops output written faster than the log takes it, beyond 1 MiB waiting, and says how much', async () => {
    // 48 MiB posted at once filled the daemon's 48 MB heap: it ended with "JavaScript heap out of memory"
    expect((await invoke(daemon.socket, 'Flood', { kib: 48 * 1024 })).result.payload).toBe('logged');
    // the log file is written after the answer
    const log = await eventually(() => /\[outpost\] \d+ bytes/.test(functionLog()) && functionLog(), 5000);
    expect(log).toMatch(/\[outpost\] \d+ bytes of output dropped: written faster than the log takes them \(more than 1048576 bytes waiting\)\n/);
    const dropped = Number(/\[outpost\] (\d+) bytes/.exec(log)![1]);
    // every 1 KiB write either reached the log or is counted dropped; how many the daemon's thread
    // took while the handler looped depends on the machine (at least 47 MiB were dropped here; 46 on CI)
    const kept = (log.match(/^L{1023}$/gm) ?? []).length;
    expect(dropped).toBeGreaterThan(0);
    expect(kept * 1024 + dropped).toBe(48 * 1024 * 1024);
    // what the log takes in time is all kept
    expect((await invoke(daemon.socket, 'Flood', { kib: 512 })).result.payload).toBe('logged');
    await eventually(() => (functionLog().match(/^END RequestId/gm) ?? []).length === 2, 5000);
    expect(functionLog().match(/\[outpost\]/g)).toHaveLength(1);
  });

  it('ignores what a handler posts on the thread\'s port that is no message of the runtime', async () => {
    // postMessage(null) ended the daemon (a TypeError in the daemon's thread)
    expect((await invoke(daemon.socket, 'Flood', { post: true })).result.payload).toBe('posted');
    expect((await fetch(`http://127.0.0.1:${daemon.port('http')}/healthz`)).status).toBe(200);
  });
});
