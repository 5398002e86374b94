import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { FAULT_CASES, FIXTURES, invoke, writePackage } from './helpers/functions.js';

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
        PyAllocate: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'python3.11', CodeUri: join(FIXTURES, 'python', 'src'), Handler: 'app.allocate', MemorySize: 128 } },
      },
    }),
  });

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { functions: { pythonPath: PYTHON, idleTimeoutSeconds: 60 } } });
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

  it('bounds a process instance\'s heap by MemorySize: Runtime.OutOfMemory, and the daemon keeps serving', async () => {
    const failed = await invoke(daemon.socket, 'ProcOom');
    expect(failed.result.payload).toMatchObject({ errorType: 'Runtime.OutOfMemory' });
    expect((await invoke(daemon.socket, 'ProcFaults')).result.payload).toMatchObject({ ok: true });
  });

  it('bounds a Python process by MemorySize: an allocation beyond it fails with MemoryError, smaller ones work', async () => {
    expect((await invoke(daemon.socket, 'PyAllocate', { mb: 16 })).result.payload).toEqual({ allocated: 16 });
    const failed = await invoke(daemon.socket, 'PyAllocate', { mb: 256 });
    expect(failed.result).toMatchObject({ functionError: 'Unhandled', payload: { errorType: 'MemoryError' } });
    expect((await invoke(daemon.socket, 'PyAllocate', { mb: 16 })).result.payload).toEqual({ allocated: 16 });
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
