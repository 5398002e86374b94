import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { invoke, processRuns, writePackage } from './helpers/functions.js';

// What a handler in a worker thread (the default isolation) starts ends with its environment, as it
// does in a process environment and on Lambda: the children are the daemon's, so only the daemon can.
// In a process environment, the children a handler detached from its process group, likewise.
const SPAWNER = [
  'const { exec, execSync, spawn } = require("node:child_process");',
  'const { appendFileSync } = require("node:fs");',
  'const PIDS = process.env.PIDS;',
  'const note = (pid) => appendFileSync(PIDS, pid + "\\n");',
  'const sleep = (options = {}) => { const child = spawn("sleep", ["300"], { stdio: "ignore", ...options }); note(child.pid); return child; };',
  'exports.handler = async (event) => {',
  '  switch (event.mode) {',
  '    case "wait": sleep(); await new Promise((resolve) => setTimeout(resolve, 60_000)); return "late";',
  '    case "loop": sleep(); for (;;);',
  // the shell waits for its background sleep: the thread is blocked in execSync, the shell leads the group
  '    case "sync": execSync(`echo $$ >> ${PIDS}; sleep 300 & echo $! >> ${PIDS}; wait`); return "late";',
  '    case "exit": sleep(); process.exit(3);',
  '    case "leave": sleep().unref(); await new Promise((resolve) => setTimeout(resolve, event.holdMs ?? 0)); return "left";',
  '    case "detached": sleep({ detached: true }).unref(); return "left";',
  // setsid(1) calls setsid() and becomes sleep, in a session of its own (in a process environment, where the child leads no group)
  '    case "setsid": { const child = spawn("setsid", ["sleep", "300"], { stdio: "ignore" }); child.unref(); note(child.pid); return "left"; }',
  // the shell exits at once: its sleep stays behind in the shell's group
  '    case "background": await new Promise((resolve) => exec(`sleep 300 > /dev/null 2>&1 & echo $! >> ${PIDS}`, resolve)); return "left";',
  '    case "output": return {',
  '      sync: execSync("echo sync; echo err >&2", { stdio: ["ignore", "pipe", "ignore"] }).toString(),',
  '      spawned: await new Promise((resolve) => { const child = spawn("sh", ["-c", "echo spawned; exit 4"]); let out = ""; child.stdout.on("data", (data) => { out += data; }); child.on("close", (code) => resolve({ out, code })); }),',
  '      execed: await new Promise((resolve) => exec("echo execed", (error, stdout) => resolve(stdout))),',
  '    };',
  '  }',
  '};',
  '',
].join('\n');

describe('functions: processes a worker thread\'s handler starts', () => {
  let daemon: TestDaemon;
  let pids: string;
  let pkg: ReturnType<typeof writePackage>;
  const deploy = async (version: string) => {
    writeFileSync(join(pkg.dir, 'version.txt'), version);
    const deployed = await outpost(daemon.socket, ['deploy', pkg.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  };
  /** The `count` pids the handlers noted next (they may still be writing them). */
  let seen = 0;
  const noted = (count: number): Promise<number[]> => eventually(() => {
    const fresh = readFileSync(pids, 'utf8').trim().split('\n').filter(Boolean).map(Number).slice(seen);
    if (fresh.length < count) return false;
    seen += count;
    return fresh.slice(0, count);
  });
  const gone = (spawned: number[]) => eventually(() => !spawned.some(processRuns));

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { functions: { idleTimeoutSeconds: 60, maxInstances: 4 } } });
    pids = join(daemon.dataDir, 'spawned.txt');
    writeFileSync(pids, '');
    const fn = (timeout: number) => ({ Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'spawner.handler', Timeout: timeout, Environment: { Variables: { PIDS: pids } } } });
    // the same handler in a process environment of its own, whose process group ends with it
    const inProcess = { ...fn(60), Metadata: { Outpost: { Isolation: 'process' } } };
    pkg = writePackage({ 'template.yaml': JSON.stringify({ Resources: { Spawner: fn(1), Patient: fn(60), Hermit: inProcess } }), 'spawner.js': SPAWNER });
    await deploy('1');
  });

  afterAll(async () => {
    await daemon.cleanup();
    pkg.remove();
  });

  it('leaves what a handler sees of its children as it was: output, exit codes, callbacks', async () => {
    expect((await invoke(daemon.socket, 'Spawner', { mode: 'output' })).result.payload).toEqual({ sync: 'sync\n', spawned: { out: 'spawned\n', code: 4 }, execed: 'execed\n' });
  });

  it('ends them when the invocation times out, waiting on a timer or stuck in a loop', async () => {
    for (const mode of ['wait', 'loop']) {
      expect((await invoke(daemon.socket, 'Spawner', { mode })).result.payload, mode).toMatchObject({ errorType: 'Sandbox.Timedout' });
      await gone(await noted(1));
    }
  });

  it('ends a child a synchronous spawn waits for, with what it started, when the invocation times out', async () => {
    expect((await invoke(daemon.socket, 'Spawner', { mode: 'sync' })).result.payload).toMatchObject({ errorType: 'Sandbox.Timedout' });
    await gone(await noted(2));
    expect((await invoke(daemon.socket, 'Spawner', { mode: 'output' })).result.payload).toMatchObject({ execed: 'execed\n' });
  });

  it('ends them when the handler ends its thread (process.exit)', async () => {
    expect((await invoke(daemon.socket, 'Spawner', { mode: 'exit' })).result.payload).toMatchObject({ errorType: 'Runtime.ExitError' });
    await gone(await noted(1));
  });

  it('keeps what an invocation left running while its environment lives, and ends it with the environment at a redeploy: a child, a detached one, one whose shell exited', async () => {
    for (const mode of ['leave', 'detached', 'background']) expect((await invoke(daemon.socket, 'Spawner', { mode })).result.payload, mode).toBe('left');
    const spawned = await noted(3);
    expect(spawned.every(processRuns)).toBe(true);
    await deploy('2');
    await gone(spawned);
  });

  it('ends what a handler in a process environment detached from its process group, or what left it itself, with the environment', async () => {
    for (const mode of ['detached', 'leave', 'setsid']) expect((await invoke(daemon.socket, 'Hermit', { mode })).result.payload, mode).toBe('left');
    const spawned = await noted(3);
    // the sleep setsid became: a session of its own, outside the environment's process group
    await eventually(() => readFileSync(`/proc/${spawned[2]}/stat`, 'utf8').includes('(sleep)'));
    expect(spawned.every(processRuns)).toBe(true);
    await deploy('2b');
    await gone(spawned);
  });

  it('lets an idle thread collect the exit of the children it is ended with, so that none stays a zombie of the daemon', async () => {
    // four environments at once (each invocation holds one for a while), each ended with a child
    const left = await Promise.all([1, 2, 3, 4].map(() => invoke(daemon.socket, 'Patient', { mode: 'leave', holdMs: 2000 })));
    expect(left.map(({ result }) => result.payload)).toEqual(['left', 'left', 'left', 'left']);
    const spawned = await noted(4);
    await deploy('3');
    await eventually(() => !spawned.some((pid) => existsSync(`/proc/${pid}`)));
  });

  it('ends them when the daemon stops, from an idle environment and from one still running past the stop\'s grace', async () => {
    expect((await invoke(daemon.socket, 'Spawner', { mode: 'leave' })).result.payload).toBe('left');
    const running = invoke(daemon.socket, 'Patient', { mode: 'wait' });
    const spawned = await noted(2);
    expect(spawned.every(processRuns)).toBe(true);
    expect(await daemon.stop()).toBe(0);
    // the daemon went away mid-invocation: the CLI gets no answer
    expect((await running).code).not.toBe(0);
    await gone(spawned);
  });
});
