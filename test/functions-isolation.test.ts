import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { FAULT_CASES, FIXTURES, invoke, processRuns, writePackage } from './helpers/functions.js';

// As functions-python.test.ts: the real interpreter behind `python3`.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

const resource = (properties: Record<string, unknown>, isolation?: string) => ({
  Type: 'AWS::Serverless::Function',
  Properties: { Runtime: 'nodejs20.x', CodeUri: join(FIXTURES, 'faults'), ...properties },
  ...(isolation ? { Metadata: { Outpost: { Isolation: isolation } } } : {}),
});

describe('functions: isolation: process and memory limits', () => {
  let daemon: TestDaemon;
  const pkg = writePackage({
    'template.yaml': JSON.stringify({
      Resources: {
        ProcFaults: resource({ Handler: 'faults.handler', Timeout: 1 }, 'process'),
        ProcOom: resource({ Handler: 'faults.allocate', MemorySize: 128, Timeout: 30 }, 'process'),
        ProcBuffers: resource({ Handler: 'faults.buffers', MemorySize: 128, Timeout: 30 }, 'process'),
        PyAllocate: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'python3.11', CodeUri: join(FIXTURES, 'python', 'src'), Handler: 'app.allocate', MemorySize: 128 } },
      },
    }),
  });

  beforeAll(async () => {
    // Not UTC, so that a function's time zone shows whose it is.
    daemon = await TestDaemon.start({ config: { functions: { pythonPath: PYTHON, idleTimeoutSeconds: 60 } }, env: { TZ: 'America/New_York' } });
    const deployed = await outpost(daemon.socket, ['deploy', pkg.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('runs a Node handler in a child process of its own, warm across invocations', async () => {
    const first = (await invoke(daemon.socket, 'ProcFaults')).result.payload;
    expect(first).toMatchObject({ ok: true, threadId: 0, invocations: 1 });
    expect(first.pid).not.toBe(daemon.process.pid);
    expect(existsSync(`/proc/${first.pid}`)).toBe(true);
    expect((await invoke(daemon.socket, 'ProcFaults')).result.payload).toMatchObject({ pid: first.pid, invocations: 2 });
  });

  it('answers each fault with the Lambda error and replaces the process where Lambda would', async () => {
    const ok = async () => (await invoke(daemon.socket, 'ProcFaults')).result.payload.pid as number;
    let pid = await ok();
    for (const [mode, error, environment] of FAULT_CASES) {
      const failed = await invoke(daemon.socket, 'ProcFaults', { mode });
      expect(failed.result, mode).toMatchObject({ statusCode: 200, functionError: 'Unhandled', payload: error });
      const next = await ok();
      if (environment === 'kept') expect(next, mode).toBe(pid);
      else {
        expect(next, mode).not.toBe(pid);
        // The old process is gone, not left behind.
        expect(existsSync(`/proc/${pid}`), mode).toBe(false);
      }
      pid = next;
    }
  }, 60_000); // 15 CLI runs and two 1 s timeouts

  it('answers a handler\'s process.abort() with Runtime.ExitError, not as running out of memory (which is also a SIGABRT)', async () => {
    const failed = await invoke(daemon.socket, 'ProcFaults', { mode: 'abort' });
    expect(failed.result.payload).toMatchObject({
      errorType: 'Runtime.ExitError', errorMessage: expect.stringMatching(/^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: signal: aborted$/),
    });
    expect((await invoke(daemon.socket, 'ProcFaults')).result.payload).toMatchObject({ ok: true });
  });

  it('bounds a process instance\'s heap by MemorySize: Runtime.OutOfMemory, and the daemon keeps serving', async () => {
    const failed = await invoke(daemon.socket, 'ProcOom');
    expect(failed.result.payload).toMatchObject({ errorType: 'Runtime.OutOfMemory' });
    expect((await invoke(daemon.socket, 'ProcFaults')).result.payload).toMatchObject({ ok: true });
  });

  it('bounds a process instance\'s whole memory by MemorySize, Buffers too (the heap limit does not see them)', async () => {
    const failed = await invoke(daemon.socket, 'ProcBuffers');
    // as Lambda ends an environment over its memory: 4 GB of Buffers would have been made
    expect(failed.result.payload).toMatchObject({ errorType: 'Runtime.OutOfMemory', errorMessage: expect.stringContaining('Runtime exited with error: signal: killed') });
    expect((await invoke(daemon.socket, 'ProcFaults')).result.payload).toMatchObject({ ok: true });
  });

  it('bounds a Python process by MemorySize: an allocation beyond it fails with MemoryError, smaller ones work', async () => {
    expect((await invoke(daemon.socket, 'PyAllocate', { mb: 16 })).result.payload).toEqual({ allocated: 16 });
    const failed = await invoke(daemon.socket, 'PyAllocate', { mb: 256 });
    expect(failed.result).toMatchObject({ functionError: 'Unhandled', payload: { errorType: 'MemoryError' } });
    expect((await invoke(daemon.socket, 'PyAllocate', { mb: 16 })).result.payload).toEqual({ allocated: 16 });
  });

  it('answers null once the event loop is empty before the handler answered (no promise and no callback, or a promise nothing settles), in a thread and a process', async () => {
    const plain = writePackage({
      'template.yaml': JSON.stringify({
        Resources: {
          PlainThread: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'plain.handler', Timeout: 1 } },
          PlainProcess: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'plain.handler', Timeout: 1 }, Metadata: { Outpost: { Isolation: 'process' } } },
        },
      }),
      'plain.js': [
        'exports.handler = (event, context, callback) => {',
        '  switch (event.mode) {',
        '    case "value": return { ignored: true };',
        '    case "log": console.log("only logs", event); return;',
        '    case "read": require("node:fs").readFile(__filename, () => console.log("read")); return "ignored";',
        '    case "later": setTimeout(() => callback(null, "called back"), 200); return "ignored";',
        '    case "forever": setInterval(() => undefined, 100); return "ignored";',
        '    case "unsettled": return new Promise(() => undefined);',
        '  }',
        '};',
        '',
      ].join('\n'),
    });
    try {
      expect(await outpost(daemon.socket, ['deploy', plain.dir])).toMatchObject({ code: 0 });
      for (const name of ['PlainThread', 'PlainProcess']) {
        for (const mode of ['value', 'log', 'read', 'unsettled']) expect((await invoke(daemon.socket, name, { mode })).result, `${name} ${mode}`).toMatchObject({ statusCode: 200, payload: null });
        // a callback called while something is pending answers instead
        expect((await invoke(daemon.socket, name, { mode: 'later' })).result, name).toMatchObject({ payload: 'called back' });
        // an event loop that never empties times out, as on Lambda
        expect((await invoke(daemon.socket, name, { mode: 'forever' })).result.payload, name).toMatchObject({ errorType: 'Sandbox.Timedout' });
        expect((await invoke(daemon.socket, name, { mode: 'value' })).result, `${name} after a timeout`).toMatchObject({ payload: null });
      }
    } finally {
      plain.remove();
    }
  });

  it('ends what a handler in a process started when its environment ends (a timeout, or the process exiting), as Lambda ends every process of an environment', async () => {
    const pids = join(daemon.dataDir, 'node-spawned.txt');
    const spawner = writePackage({
      'template.yaml': JSON.stringify({
        Resources: { Spawner: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'spawner.handler', Timeout: 1 }, Metadata: { Outpost: { Isolation: 'process' } } } },
      }),
      // a child left running in the background, then the handler outlives its timeout or exits
      'spawner.js': [
        'const { spawn } = require("node:child_process");',
        'const { appendFileSync } = require("node:fs");',
        'exports.handler = async (event) => {',
        `  const child = spawn("sleep", ["300"], { stdio: "ignore" });`,
        `  appendFileSync(${JSON.stringify(pids)}, child.pid + "\\n");`,
        '  if (event.exit) process.exit(3);',
        '  await new Promise((resolve) => setTimeout(resolve, 10_000));',
        '};',
        '',
      ].join('\n'),
    });
    try {
      expect(await outpost(daemon.socket, ['deploy', spawner.dir])).toMatchObject({ code: 0 });
      expect((await invoke(daemon.socket, 'Spawner', {})).result.payload).toMatchObject({ errorType: 'Sandbox.Timedout' });
      expect((await invoke(daemon.socket, 'Spawner', { exit: true })).result.payload).toMatchObject({ errorType: 'Runtime.ExitError' });
      const spawned = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
      expect(spawned).toHaveLength(2);
      await eventually(() => !spawned.some(processRuns));
    } finally {
      spawner.remove();
    }
  });

  it('sets TZ=:UTC for functions: processes run in UTC; a thread keeps the daemon\'s zone (documented), which its TZ does not move', async () => {
    const zones = writePackage({
      'template.yaml': JSON.stringify({
        Resources: {
          ZoneThread: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'zone.handler' } },
          ZoneProcess: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'zone.handler' }, Metadata: { Outpost: { Isolation: 'process' } } },
          ZonePython: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'python3.12', Handler: 'zone.handler' } },
        },
      }),
      // minutes west of UTC on 1 January 2024: 300 in New York
      'zone.js': 'exports.handler = async () => ({ tz: process.env.TZ, offset: new Date(2024, 0, 1).getTimezoneOffset() });\n',
      'zone.py': 'import os, time\ndef handler(event, context):\n    return {"tz": os.environ.get("TZ"), "offset": time.timezone // 60}\n',
    });
    try {
      expect(await outpost(daemon.socket, ['deploy', zones.dir])).toMatchObject({ code: 0 });
      expect((await invoke(daemon.socket, 'ZoneProcess')).result.payload).toEqual({ tz: ':UTC', offset: 0 });
      expect((await invoke(daemon.socket, 'ZonePython')).result.payload).toEqual({ tz: ':UTC', offset: 0 });
      expect((await invoke(daemon.socket, 'ZoneThread')).result.payload).toEqual({ tz: ':UTC', offset: 300 });
      // a thread started after one had TZ set still has the daemon's zone: the process's is unchanged
      expect(await outpost(daemon.socket, ['functions', 'rm', 'ZoneThread'])).toMatchObject({ code: 0 });
      expect(await outpost(daemon.socket, ['deploy', zones.dir])).toMatchObject({ code: 0 });
      expect((await invoke(daemon.socket, 'ZoneThread')).result.payload).toEqual({ tz: ':UTC', offset: 300 });
    } finally {
      zones.remove();
    }
  });

  it('refuses Isolation: thread for Python and unknown isolation values, naming the key', async () => {
    const bad = writePackage({
      'template.yaml': JSON.stringify({
        Resources: {
          Odd: { Type: 'AWS::Serverless::Function', Properties: { Handler: 'index.handler', Runtime: 'nodejs20.x' }, Metadata: { Outpost: { Isolation: 'vm', Sandbox: 1 } } },
        },
      }),
      'app.py': 'def handler(event, context):\n    return 1\n',
      'index.js': 'exports.handler = async () => 1;\n',
    });
    try {
      const refused = await outpost(daemon.socket, ['deploy', bad.dir]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('Resources.Odd.Metadata.Outpost.Isolation: expected "thread" or "process"');
      expect(refused.stderr).toContain('Resources.Odd.Metadata.Outpost.Sandbox: unsupported key');
      writeFileSync(join(bad.dir, 'template.yaml'), JSON.stringify({
        Resources: { Py: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'python3.11', Handler: 'app.handler' }, Metadata: { Outpost: { Isolation: 'thread' } } } },
      }));
      expect((await outpost(daemon.socket, ['deploy', bad.dir])).stderr).toContain('Resources.Py.Metadata.Outpost.Isolation: python runtimes always run in a process');
    } finally {
      bad.remove();
    }
  });
});
