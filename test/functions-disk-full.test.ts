import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';
import { outpost } from './helpers/mqtt.js';
import { lambdaInvoke, RECORDER, template, thingKey, writePackage, type AccessKey } from './helpers/functions.js';
import { canMountTmpfs, fillLeaving, mountTmpfs, unmountTmpfs } from './helpers/tmpfs.js';

describe.skipIf(!canMountTmpfs())('functions and the admin API with a full disk (tmpfs data directory)', () => {
  let daemon: TestDaemon;
  let mountPoint: string | undefined;
  let key: AccessKey;
  const out = writePackage({});
  const recorder = writePackage({ 'index.js': RECORDER, 'template.yaml': template('Recorder', { Handler: 'index.handler', Environment: { Variables: { OUT: join(out.dir, 'events.jsonl') } } }) });
  const other = writePackage({ 'index.js': RECORDER, 'template.yaml': template('Other', { Handler: 'index.handler' }) });

  beforeAll(async () => {
    mountPoint = mountTmpfs(40);
    mkdirSync(join(mountPoint!, 'data'));
    daemon = await TestDaemon.start({ dataDir: join(mountPoint!, 'data'), config: {} });
    key = await thingKey(daemon.socket, 'invoker');
    expect(await outpost(daemon.socket, ['deploy', recorder.dir])).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    await daemon?.stop();
    if (mountPoint) unmountTmpfs(mountPoint);
    for (const pkg of [out, recorder, other]) pkg.remove();
  });

  it('says the disk is full, keeps nothing half-done, and works again once space returns', async () => {
    const filler = fillLeaving(mountPoint!, 0);
    // a deploy: the CLI says what is wrong (it said "internal error"), and no staged copy is left behind
    const deploy = await outpost(daemon.socket, ['deploy', other.dir]);
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toMatch(/^outpost: the gateway's disk is full, nothing was changed: ENOSPC: no space left on device/);
    expect(readdirSync(join(daemon.dataDir, 'functions')).filter((name) => name.startsWith('.') || name.includes('Other'))).toEqual([]);
    expect(JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'ls'])).stdout).functions.map((f: any) => f.name)).toEqual(['Recorder']);
    // an asynchronous Invoke cannot queue its event: Lambda's ServiceException, saying why
    const queued = await lambdaInvoke(daemon.port('http'), key, 'Recorder', { body: '{"n":1}', headers: { 'X-Amz-Invocation-Type': 'Event' } });
    expect(queued.status).toBe(500);
    expect(queued.headers.get('x-amzn-errortype')).toBe('ServiceException');
    expect(await queued.json()).toEqual({ Type: 'Service', message: "Internal error: the gateway's disk is full (database or disk is full)" });
    // a synchronous one needs no disk
    const direct = await lambdaInvoke(daemon.port('http'), key, 'Recorder', { body: '{"n":2}' });
    expect(direct.status).toBe(200);

    rmSync(filler);
    expect(await outpost(daemon.socket, ['deploy', other.dir])).toMatchObject({ code: 0 });
    expect((await lambdaInvoke(daemon.port('http'), key, 'Recorder', { body: '{"n":3}', headers: { 'X-Amz-Invocation-Type': 'Event' } })).status).toBe(202);
    await eventually(() => jsonLines(join(out.dir, 'events.jsonl')).length === 2, 10_000, 100);
    expect(jsonLines(join(out.dir, 'events.jsonl'))).toEqual([{ n: 2 }, { n: 3 }]);
  }, 60_000);
});
