import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { FIXTURES, invoke, lambdaInvoke, processRuns, startTime, template, thingKey, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';

/** A function's log file once it holds the END line of `requestId` (it is written after the answer). */
function logThrough(daemon: TestDaemon, name: string, requestId: string): Promise<string> {
  const file = join(daemon.dataDir, 'functions', name, 'logs', 'function.log');
  return eventually(() => {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    return text.includes(`END RequestId: ${requestId}`) ? text : undefined;
  });
}

// The real interpreter behind `python3` (a pyenv shim needs more environment than a function gets).
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

describe('functions: Python handlers through the Lambda Runtime API', () => {
  let daemon: TestDaemon;
  const cleanups: Array<() => void> = [];

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true }, functions: { pythonPath: PYTHON, idleTimeoutSeconds: 60 } } });
    const deployed = await outpost(daemon.socket, ['deploy', join(FIXTURES, 'python')]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    for (const cleanup of cleanups) cleanup();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
  });

  it('runs a handler with the Python context object and the Lambda environment, warm on the next call', async () => {
    const { code, result } = await invoke(daemon.socket, 'PyEcho', { temp: 21.5 });
    expect(code).toBe(0);
    expect(result).toMatchObject({ statusCode: 200, executedVersion: '$LATEST' });
    const { event, context, env } = result.payload;
    expect(event).toEqual({ temp: 21.5 });
    expect(context).toMatchObject({
      aws_request_id: result.requestId,
      function_name: 'PyEcho',
      function_version: '$LATEST',
      invoked_function_arn: 'arn:aws:lambda:local:000000000000:function:PyEcho',
      memory_limit_in_mb: '256',
      log_group_name: '/aws/lambda/PyEcho',
      client_context: null,
    });
    expect(context.log_stream_name).toMatch(/^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/);
    expect(context.remaining).toBeGreaterThan(4000);
    expect(context.remaining).toBeLessThanOrEqual(5000);
    expect(env).toMatchObject({ GREETING: 'hola', AWS_LAMBDA_FUNCTION_NAME: 'PyEcho', AWS_EXECUTION_ENV: 'AWS_Lambda_python3.11', _HANDLER: 'app.handler', AWS_REGION: 'local', HOME: null });
    expect(env.LAMBDA_TASK_ROOT).toContain(join(daemon.dataDir, 'functions', 'PyEcho'));

    const again = await invoke(daemon.socket, 'PyEcho', { n: 2 });
    expect(again.result.payload.calls).toBe(2);
    const log = readFileSync(join(daemon.dataDir, 'functions', 'PyEcho', 'logs', 'function.log'), 'utf8');
    expect(log).toContain("event {'temp': 21.5}\n");
    expect(log).toContain(`[INFO]\t`);
    expect(log).toContain(`\t${result.requestId}\thandled ${result.requestId}\n`);
    // the handler's lines before the END its answer brings
    expect(log).toMatch(new RegExp(`\\thandled ${result.requestId}\\n[\\s\\S]*END RequestId: ${result.requestId}\\n`));
    expect(log).toMatch(new RegExp(`REPORT RequestId: ${result.requestId}\\tDuration: [\\d.]+ ms\\t.*Init Duration`));
  });

  it('has context.log and sets _X_AMZN_TRACE_ID for each invocation, as Lambda\'s Python runtime', async () => {
    const pkg = writePackage({
      'template.yaml': template('PyTraced', { Handler: 'app.handler', Runtime: 'python3.11' }),
      'app.py': 'import os\n\ndef handler(event, context):\n    context.log("via context.log " + context.aws_request_id + "\\n")\n    return os.environ.get("_X_AMZN_TRACE_ID")\n',
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    const first = (await invoke(daemon.socket, 'PyTraced')).result;
    const second = (await invoke(daemon.socket, 'PyTraced')).result;
    expect(first.payload).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0$/);
    expect(second.payload).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0$/);
    expect(second.payload).not.toBe(first.payload);
    expect(await logThrough(daemon, 'PyTraced', second.requestId)).toContain(`via context.log ${first.requestId}\n`);
  });

  it('leaves the logging root logger at WARNING, as Lambda\'s Python runtime: logging.info shows once the function lowers the level', async () => {
    const pkg = writePackage({
      'template.yaml': template('PyLogging', { Handler: 'app.handler', Runtime: 'python3.11' }),
      'app.py': [
        'import logging',
        'logging.warning("module loading")',
        'def handler(event, context):',
        '    logging.info("info before setLevel")',
        '    logging.warning("warning %s", event["n"])',
        '    logging.getLogger().setLevel(logging.INFO)',
        '    logging.info("info after setLevel")',
        '    return logging.getLogger().level',
      ].join('\n'),
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    const { result } = await invoke(daemon.socket, 'PyLogging', { n: 1 });
    expect(result.payload).toBe(20);
    const log = await logThrough(daemon, 'PyLogging', result.requestId);
    expect(log).not.toContain('info before setLevel');
    // a line of the module's own, before any invocation: no request id (empty, as Lambda's runtime writes it)
    expect(log).toMatch(/\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t\tmodule loading\n/);
    expect(log).toMatch(new RegExp(`\\[WARNING\\]\\t\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\t${result.requestId}\\twarning 1\\n`));
    expect(log).toContain(`[INFO]\t`);
    expect(log).toContain(`\t${result.requestId}\tinfo after setLevel\n`);
  });

  it('writes each logging record as one line, without an empty line after it, and ends a logged traceback\'s last line', async () => {
    const pkg = writePackage({
      'template.yaml': template('PyLines', { Handler: 'app.handler', Runtime: 'python3.11' }),
      'app.py': [
        'import logging',
        'def handler(event, context):',
        '    logging.warning("first")',
        '    logging.warning("second")',
        '    try:',
        '        raise ValueError("inner")',
        '    except ValueError:',
        '        logging.exception("caught")',
        '    print("after")',
        '    return 1',
      ].join('\n'),
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    const { result } = await invoke(daemon.socket, 'PyLines', {});
    const id = result.requestId;
    expect(await logThrough(daemon, 'PyLines', id)).toMatch(new RegExp([
      `\\[WARNING\\]\\t[^\\n]+\\t${id}\\tfirst\\n`,
      `\\[WARNING\\]\\t[^\\n]+\\t${id}\\tsecond\\n`,
      `\\[ERROR\\]\\t[^\\n]+\\t${id}\\tcaught\\nTraceback \\(most recent call last\\):\\n(?: [^\\n]*\\n)+ValueError: inner\\n`,
      'after\\n',
      `END RequestId: ${id}\\n`,
    ].join('')));
  });

  it('answers an exception as {errorType, errorMessage, stackTrace}, and logs it as Lambda\'s Python runtime: [ERROR] and the traceback in one line', async () => {
    const { code, result } = await invoke(daemon.socket, 'PyBoom', { n: 7 });
    expect(code).toBe(1);
    expect(result).toMatchObject({ functionError: 'Unhandled', payload: { errorType: 'ValueError', errorMessage: 'boom 7', requestId: result.requestId } });
    expect(result.payload.stackTrace.join('')).toMatch(/app\.py", line \d+, in boom/);
    expect(result.payload.stackTrace.join('')).not.toContain('bootstrap.py');
    const log = await logThrough(daemon, 'PyBoom', result.requestId);
    // one line, its parts joined by \r, the frames' indents no-break spaces (awslambdaric's log_error)
    expect(log).toMatch(new RegExp(`\\n\\[ERROR\\] ValueError: boom 7\\rTraceback \\(most recent call last\\):\\r\\u00a0{2}File "[^"\\n\\r]*app\\.py", line \\d+, in boom\\r\\u00a0{4}raise ValueError\\([^\\n\\r]*\\nEND RequestId: ${result.requestId}\\n`));
    expect(log).not.toContain('Invoke Error');
  });

  it('kills a process that times out and starts a fresh one; replaces a crashed one', async () => {
    const slow = await invoke(daemon.socket, 'PySlow', {});
    expect(slow.result).toMatchObject({ functionError: 'Unhandled', payload: { errorType: 'Sandbox.Timedout' } });
    expect(slow.result.payload.errorMessage).toMatch(/^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$/);
    // the process's peak, read before it was killed
    expect(await logThrough(daemon, 'PySlow', slow.result.requestId)).toMatch(new RegExp(`REPORT RequestId: ${slow.result.requestId}\\t.*\\tMax Memory Used: \\d+ MB`));

    const first = await invoke(daemon.socket, 'PyCrash', {});
    const crashed = await invoke(daemon.socket, 'PyCrash', { exit: true });
    expect(crashed.result).toMatchObject({ functionError: 'Unhandled', payload: { errorType: 'Runtime.ExitError' } });
    expect(crashed.result.payload.errorMessage).toMatch(/Runtime exited with error: exit status 3$/);
    const after = await invoke(daemon.socket, 'PyCrash', {});
    expect(after.code).toBe(0);
    expect(after.result.payload.pid).not.toBe(first.result.payload.pid);
  }, 20_000);

  it('ends what a handler started when its environment ends, as Lambda ends every process of an environment it replaces', async () => {
    const pids = join(daemon.dataDir, 'py-spawned.txt');
    const pkg = writePackage({
      'template.yaml': template('PySpawner', { Handler: 'app.handler', Runtime: 'python3.11', Timeout: 1 }),
      // a child left running in the background, and the handler outliving its timeout
      'app.py': `import subprocess, time\ndef handler(event, context):\n    child = subprocess.Popen(["sleep", "300"])\n    open(${JSON.stringify(pids)}, "a").write("%d\\n" % child.pid)\n    time.sleep(10)\n`,
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    expect((await invoke(daemon.socket, 'PySpawner', {})).result.payload).toMatchObject({ errorType: 'Sandbox.Timedout' });
    const [pid] = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    await eventually(() => !processRuns(pid));
  });

  describe('processes that left the environment\'s process group', () => {
    let pids: string;
    let pkg: ReturnType<typeof writePackage>;
    let seen = 0;
    /** The processes the handler noted since the last call: pid and start time. */
    const noted = () => {
      const fresh = readFileSync(pids, 'utf8').trim().split('\n').filter(Boolean).slice(seen);
      seen += fresh.length;
      return fresh.map((line) => ({ pid: Number(line.split(' ')[0]), started: line.split(' ')[1] }));
    };
    const gone = (processes: Array<{ pid: number; started?: string }>) => eventually(() => processes.every(({ pid, started }) => startTime(pid) !== started));
    const deploy = async (version: string) => {
      writeFileSync(join(pkg.dir, 'version.txt'), version);
      expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    };

    beforeAll(async () => {
      pids = join(daemon.dataDir, 'py-escaped.txt');
      writeFileSync(pids, '');
      pkg = writePackage({
        'template.yaml': template('PyEscaper', { Handler: 'app.handler', Runtime: 'python3.11', Timeout: 1, Environment: { Variables: { PIDS: pids } } }),
        'app.py': [
          'import os, subprocess, time',
          'def note(pid):',
          '    with open("/proc/%d/stat" % pid) as stat:',
          '        started = stat.read().rpartition(")")[2].split()[19]',
          '    with open(os.environ["PIDS"], "a") as pids:',
          '        pids.write("%d %s\\n" % (pid, started))',
          // a daemon's double fork: the intermediate leaves the session and exits, orphaning its child
          'def double_fork(seconds):',
          '    reader, writer = os.pipe()',
          '    intermediate = os.fork()',
          '    if intermediate == 0:',
          '        os.setsid()',
          '        orphan = os.fork()',
          '        if orphan == 0:',
          '            os.execvp("sleep", ["sleep", seconds])',
          '        os.write(writer, b"%d" % orphan)',
          '        os._exit(0)',
          '    os.close(writer)',
          '    os.waitpid(intermediate, 0)',
          '    orphan = int(os.read(reader, 32))',
          '    os.close(reader)',
          '    return orphan',
          'def handler(event, context):',
          '    if event["mode"] == "statuses":',
          '        orphan = double_fork("0.1")',
          '        return {"orphan": orphan, "codes": [subprocess.Popen(["sh", "-c", "sleep 0.3; exit 7"]).wait(), subprocess.run(["sh", "-c", "exit 5"]).returncode, os.waitstatus_to_exitcode(os.system("exit 3"))]}',
          '    note(subprocess.Popen(["sleep", "300"], start_new_session=True).pid)',
          '    note(double_fork("300"))',
          '    if event["mode"] == "wait":',
          '        time.sleep(10)',
          '    if event["mode"] == "exit":',
          '        os._exit(3)',
          '    return "left"',
          '',
        ].join('\n'),
      });
      cleanups.push(pkg.remove);
      await deploy('1');
    });

    it('ends them when the invocation times out and when the runtime exits', async () => {
      expect((await invoke(daemon.socket, 'PyEscaper', { mode: 'wait' })).result.payload).toMatchObject({ errorType: 'Sandbox.Timedout' });
      const timedOut = noted();
      expect(timedOut).toHaveLength(2);
      await gone(timedOut);
      expect((await invoke(daemon.socket, 'PyEscaper', { mode: 'exit' })).result.payload).toMatchObject({ errorType: 'Runtime.ExitError', errorMessage: expect.stringMatching(/exit status 3$/) });
      await gone(noted());
    });

    it('keeps them while the environment lives, with the exit statuses of the handler\'s own children, and ends them at a redeploy', async () => {
      expect((await invoke(daemon.socket, 'PyEscaper', { mode: 'leave' })).result.payload).toBe('left');
      const left = noted();
      expect(left.map(({ pid }) => processRuns(pid))).toEqual([true, true]);
      // an orphan adopted by the environment is reaped when it exits; the handler's own children are the handler's to wait for
      const { result } = await invoke(daemon.socket, 'PyEscaper', { mode: 'statuses' });
      expect(result.payload.codes).toEqual([7, 5, 3]);
      await eventually(() => !existsSync(`/proc/${result.payload.orphan}`));
      expect(left.every(({ pid, started }) => startTime(pid) === started)).toBe(true);
      await deploy('2');
      await gone(left);
    });

    it('ends them when the daemon is killed (kill -9), from an idle environment', async () => {
      const killed = await TestDaemon.start({ config: { functions: { pythonPath: PYTHON } } });
      try {
        expect(await outpost(killed.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
        expect((await invoke(killed.socket, 'PyEscaper', { mode: 'leave' })).result.payload).toBe('left');
        const left = noted();
        expect(left.map(({ pid }) => processRuns(pid))).toEqual([true, true]);
        await killed.kill();
        await gone(left);
      } finally {
        await killed.cleanup();
      }
    });
  });

  it('invokes on MQTT messages with the topic in context.client_context.custom, whatever characters it holds', async () => {
    const out = join(daemon.dataDir, 'py-events.jsonl');
    const client = await connectClient(daemon.mqttUrl, { clientId: 'py-sensor' });
    // past Latin-1, a quote and a backslash: the client context travels in a header of the Runtime API
    // (a control character closes the publisher's connection: broker/topic.ts, hasUnsafeCharacter)
    const topics = ['py/s1/reading', 'py/温度/reading', 'py/s"\\😀/reading'];
    try {
      // at once: the later ones wait for the instance, and are handed over as it asks for its next event
      await Promise.all(topics.map((topic, v) => client.publishAsync(topic, JSON.stringify({ out, v }), { qos: 1 })));
    } finally {
      client.end(true);
    }
    const lines = await eventually(() => {
      const written = jsonLines(out);
      return written.length === topics.length && written;
    });
    expect(lines.sort((a, b) => a.event.v - b.event.v)).toEqual(topics.map((subject, v) => ({ event: { out, v }, subject })));
    expect((await invoke(daemon.socket, 'PyEcho', { after: true })).code).toBe(0);
  });

  it('reads a client context of JSON null as none, and fails only the invocation for one that is not an object, as Lambda\'s Python runtime', async () => {
    const key = await thingKey(daemon.socket, 'py-context-invoker');
    const withContext = async (json: string) => {
      const response = await lambdaInvoke(daemon.port('http'), key, 'PyEcho', { headers: { 'X-Amz-Client-Context': Buffer.from(json).toString('base64') } });
      return { functionError: response.headers.get('x-amz-function-error'), payload: await response.json() };
    };
    const none = await withContext('null');
    expect(none).toMatchObject({ functionError: null, payload: { context: { client_context: null } } });
    expect(await withContext('[1, 2]')).toEqual({ functionError: 'Unhandled', payload: expect.objectContaining({ errorType: 'AttributeError', errorMessage: "'list' object has no attribute 'get'" }) });
    // the same process: it counts on from the first call
    const custom = await withContext('{"custom": {"site": "north"}}');
    expect(custom.payload).toMatchObject({ calls: none.payload.calls + 1, context: { client_context: { site: 'north' } } });
  });

  it('runs the next event on a fresh process when the warm one died while idle', async () => {
    const first = await invoke(daemon.socket, 'PyCrash', {});
    expect(first.code).toBe(0);
    process.kill(first.result.payload.pid, 'SIGKILL');
    await eventually(() => { try { process.kill(first.result.payload.pid, 0); return false; } catch { return true; } });
    // Handed to the dead process, it would have waited there for the function's timeout and failed (Sandbox.Timedout).
    const next = await invoke(daemon.socket, 'PyCrash', {});
    expect(next.code, JSON.stringify(next.result)).toBe(0);
    expect(next.result.payload.pid).not.toBe(first.result.payload.pid);
  });

  it('answers a handler that runs longer than the Runtime API connection is idle (Node\'s 5 s keep-alive)', async () => {
    const pkg = writePackage({
      'template.yaml': template('PyLong', { Handler: 'app.handler', Runtime: 'python3.11', Timeout: 20 }),
      'app.py': 'import time\ndef handler(event, context):\n  time.sleep(event["s"])\n  return {"slept": event["s"]}\n',
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    // the bootstrap's connection sits idle for the whole handler, then posts the response on it
    const long = await invoke(daemon.socket, 'PyLong', { s: 6.5 });
    expect(long.result).toMatchObject({ statusCode: 200, payload: { slept: 6.5 } });
    expect(long.result.functionError).toBeUndefined();
    const again = await invoke(daemon.socket, 'PyLong', { s: 0 });
    expect(again.result.payload).toEqual({ slept: 0 });
  }, 30_000);

  it('settles the events waiting for a numbered version\'s process when the function is removed', async () => {
    const pkg = writePackage({
      'template.yaml': template('PyLeaving', { Handler: 'app.handler', Runtime: 'python3.11', Timeout: 10 }),
      'app.py': 'import time\ndef handler(event, context):\n  time.sleep(2)\n  return event\n',
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    // one process, one event at a time: the rest wait in the version's pool
    const sent = await Promise.all(Array.from({ length: 6 }, (_, i) => outpost(daemon.socket, ['invoke', 'PyLeaving:1', '--async', '--payload', JSON.stringify({ i })])));
    expect(sent.map((run) => run.code)).toEqual([0, 0, 0, 0, 0, 0]);
    const asyncEvents = async () => JSON.parse((await outpost(daemon.socket, ['--json', 'status'])).stdout).services.functions.asyncEvents;
    await eventually(async () => (await asyncEvents()).running > 1);
    expect(await outpost(daemon.socket, ['functions', 'rm', 'PyLeaving'])).toMatchObject({ code: 0 });
    await eventually(async () => { const events = await asyncEvents(); return events.queued === 0 && events.running === 0; }, 10_000, 200);
  });

  it('passes on a response that is not JSON (json.dumps writes NaN), once, to the caller and to the OnSuccess destination', async () => {
    const out = join(daemon.dataDir, 'py-nan-runs.txt');
    const pkg = writePackage({
      'template.yaml': template('PyNaN', {
        Handler: 'app.handler', Runtime: 'python3.11',
        EventInvokeConfig: { DestinationConfig: { OnSuccess: { Type: 'MQTT', Destination: 'py/nan/records' } } },
      }),
      'app.py': `def handler(event, context):\n  open(${JSON.stringify(out)}, 'a').write('run\\n')\n  return float('nan')\n`,
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    // the admin API's payloadText, as the caller's own: told from a handler's "NaN"
    const answered = (await invoke(daemon.socket, 'PyNaN', {})).result;
    expect(answered).toMatchObject({ statusCode: 200, payloadText: 'NaN' });
    expect(answered).not.toHaveProperty('payload');
    expect(await outpost(daemon.socket, ['invoke', 'PyNaN'])).toMatchObject({ code: 0, stdout: 'NaN\n' });
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'py-nan-watcher' });
    try {
      const record = new Promise<any>((resolve) => watcher.on('message', (_topic, payload) => resolve(JSON.parse(payload.toString()))));
      await watcher.subscribeAsync('py/nan/records', { qos: 1 });
      expect((await outpost(daemon.socket, ['invoke', 'PyNaN', '--async'])).code).toBe(0);
      expect(await record).toMatchObject({ requestContext: { condition: 'Success', approximateInvokeCount: 1 }, responsePayload: 'NaN' });
      // run once each: the record's failure was not taken for the event's
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(readFileSync(out, 'utf8')).toBe('run\nrun\nrun\n');
    } finally {
      watcher.end(true);
    }
  });

  it('keeps running a function whose log cannot be written, its output dropped, and writes it again once it can', async () => {
    // a directory where the log file should be: every write of the log fails
    const logFile = join(daemon.dataDir, 'functions', 'PyChatty', 'logs', 'function.log');
    mkdirSync(logFile, { recursive: true });
    const pkg = writePackage({
      'template.yaml': template('PyChatty', { Handler: 'app.handler', Runtime: 'python3.11', Timeout: 5 }),
      // more than a pipe holds (64 KiB): a process whose output nobody reads stops
      'app.py': "def handler(event, context):\n  print('x' * 200_000)\n  return event['n']\n",
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    for (let n = 0; n < 3; n++) expect((await invoke(daemon.socket, 'PyChatty', { n })).result).toMatchObject({ payload: n });
    expect(daemon.logs.filter((entry) => entry.function === 'PyChatty' && /cannot write the function log/.test(entry.msg))).toHaveLength(1);
    // once it can be written again (space freed), it is
    rmSync(logFile, { recursive: true });
    expect((await invoke(daemon.socket, 'PyChatty', { n: 3 })).result).toMatchObject({ payload: 3 });
    await eventually(() => existsSync(logFile) && /REPORT RequestId/.test(readFileSync(logFile, 'utf8')));
  });

  it('marshals a Decimal as a number, and reports a response\'s real size and a process killed by a signal as Lambda does', async () => {
    const pkg = writePackage({
      'template.yaml': template('PyMarshal', { Handler: 'app.handler', Runtime: 'python3.12' }),
      'app.py': [
        'import decimal, os, signal',
        'def handler(event, context):',
        '    if event["mode"] == "decimal":',
        '        return {"price": decimal.Decimal("3.14159"), "count": decimal.Decimal("10")}',
        '    if event["mode"] == "set":',
        '        return {1, 2}',
        '    if event["mode"] == "big":',
        '        return "x" * (7 * 1024 * 1024)',
        '    if event["mode"] == "edge":',
        '        return "x" * (6 * 1024 * 1024 + 98)',
        '    os.kill(os.getpid(), signal.SIGKILL)',
        '',
      ].join('\n'),
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    expect((await invoke(daemon.socket, 'PyMarshal', { mode: 'decimal' })).result).toMatchObject({ payload: { price: 3.14159, count: 10 } });
    // other values json cannot write still fail as before
    expect((await invoke(daemon.socket, 'PyMarshal', { mode: 'set' })).result.payload).toMatchObject({
      errorType: 'Runtime.MarshalError', errorMessage: 'Unable to marshal response: Object of type set is not JSON serializable',
    });
    // 7 MiB of x and the two quotes around them
    expect((await invoke(daemon.socket, 'PyMarshal', { mode: 'big' })).result.payload).toEqual({
      errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size (7340034 bytes) exceeded maximum allowed payload size (6291556 bytes).',
    });
    // Lambda's response limit is 100 bytes over 6 MiB: an answer of exactly that size is taken.
    expect((await invoke(daemon.socket, 'PyMarshal', { mode: 'edge' })).result.payload).toHaveLength(6 * 1024 * 1024 + 98);
    const killed = await invoke(daemon.socket, 'PyMarshal', { mode: 'kill' });
    expect(killed.result.payload).toEqual({ errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${killed.result.requestId} Error: Runtime exited with error: signal: killed` });
  });

  it('marshals as Lambda\'s Python runtime: a whole Decimal as an integer, bytes as they are, anything json cannot write as Runtime.MarshalError', async () => {
    const pkg = writePackage({
      'template.yaml': template('PyWire', { Handler: 'app.handler', Runtime: 'python3.12' }),
      'app.py': [
        'import decimal',
        'def handler(event, context):',
        '    if event["mode"] == "decimal":',
        '        return {"count": decimal.Decimal("10"), "id": decimal.Decimal("123456789012345678901234567890"), "price": decimal.Decimal("3.14159")}',
        '    if event["mode"] == "bytes":',
        '        return b\'{"already": "serialized"}\'',
        '    deep = []',
        '    for _ in range(100_000):',
        '        deep = [deep]',
        '    return deep',
        '',
      ].join('\n'),
    });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    const key = await thingKey(daemon.socket, 'py-wire-invoker');
    // The payload as it comes over the wire: JSON.parse would read 10.0 as 10 too.
    const raw = async (mode: string) => (await lambdaInvoke(daemon.port('http'), key, 'PyWire', { body: JSON.stringify({ mode }) })).text();
    expect(await raw('decimal')).toBe('{"count": 10, "id": 123456789012345678901234567890, "price": 3.14159}');
    expect(await raw('bytes')).toBe('{"already": "serialized"}');
    // RecursionError, which is neither TypeError nor ValueError: the process carries on
    expect(JSON.parse(await raw('deep'))).toMatchObject({ errorType: 'Runtime.MarshalError', errorMessage: expect.stringMatching(/^Unable to marshal response: maximum recursion depth exceeded/), stackTrace: [] });
    expect(await raw('bytes')).toBe('{"already": "serialized"}');
  });

  it('refuses a deploy whose Python handler does not load, naming the error', async () => {
    const cases: Array<[Record<string, string>, string, string]> = [
      [{ 'app.py': 'def other(e, c):\n  return 1\n' }, 'app.handler', "Runtime.HandlerNotFound: Handler 'handler' missing on module 'app'"],
      // split as the Python runtime splits it: only a name without a dot is malformed
      [{ 'app.py': 'x = 1\n' }, 'app', "Runtime.MalformedHandlerName: Bad handler 'app': not enough values to unpack (expected 2, got 1)"],
      [{ 'app.py': 'x = 1\n' }, 'app.', "Runtime.HandlerNotFound: Handler '' missing on module 'app'"],
      [{ 'app.py': 'x = 1\n' }, '.handler', 'ValueError: Empty module name'],
      // Lambda's runtime takes one that is there but cannot be called, and fails each invocation (TypeError)
      [{ 'app.py': 'handler = {"not": "a function"}\n' }, 'app.handler', "Runtime.HandlerNotFound: Handler 'handler' on module 'app' is not callable ('dict' object)"],
      [{ 'app.py': 'x = 1\n' }, 'nope.handler', "Runtime.ImportModuleError: Unable to import module 'nope': No module named 'nope'"],
      [{ 'app.py': 'def handler(e, c)\n  return 1\n' }, 'app.handler', "Runtime.UserCodeSyntaxError: Syntax error in module 'app'"],
      // an ImportError that is no ModuleNotFoundError
      [{ 'app.py': 'from os import nonexistent_name\n' }, 'app.handler', "Runtime.ImportModuleError: Unable to import module 'app': cannot import name 'nonexistent_name' from 'os'"],
      // the interpreter's own time module, not the function's time.py
      [{ 'time.py': 'def handler(e, c):\n  return 1\n' }, 'time.handler', 'Runtime.BuiltInModuleConflict: Cannot use built-in module time as a handler module'],
      // checked on the name as written: time/x is the x of a package time, which the interpreter's time is not
      [{ 'time/x.py': 'def handler(e, c):\n  return 1\n' }, 'time/x.handler', "Runtime.ImportModuleError: Unable to import module 'time/x': No module named 'time.x'; 'time' is not a package"],
    ];
    for (const [files, handler, error] of cases) {
      const pkg = writePackage({ 'template.yaml': template('PyBad', { Handler: handler, Runtime: 'python3.11' }), ...files });
      cleanups.push(pkg.remove);
      const refused = await outpost(daemon.socket, ['deploy', pkg.dir]);
      expect(refused.code, handler).toBe(1);
      expect(refused.stderr).toContain('PyBad: the handler does not load (nothing was deployed)');
      expect(refused.stderr).toContain(error);
    }
  });
});

describe('functions: the Python runtime sockets of a daemon that was killed', () => {
  it('removes those a killed daemon left in the temporary directory as the next one starts, and keeps a running process\'s', { timeout: 60_000 }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'outpost-tmpdir-'));
    const start = (dataDir?: string) => TestDaemon.start({ dataDir, config: { functions: { pythonPath: PYTHON, idleTimeoutSeconds: 60 } }, env: { TMPDIR: tmp } });
    const socketDirs = () => readdirSync(tmp).filter((name) => name.startsWith('outpost-py-')).sort();
    const first = await start();
    try {
      const deployed = await outpost(first.socket, ['deploy', join(FIXTURES, 'python')]);
      expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
      expect((await invoke(first.socket, 'PyEcho', {})).code).toBe(0);
      // the warm environment's, named by the daemon's pid
      expect(socketDirs()).toEqual([expect.stringMatching(new RegExp(`^outpost-py-${first.process.pid}-`))]);
      await first.kill();
      // one of a process still running (this test's) is another daemon's, for all the next one knows
      mkdirSync(join(tmp, `outpost-py-${process.pid}-running`));
      const second = await start(first.dataDir);
      try {
        expect(socketDirs()).toEqual([`outpost-py-${process.pid}-running`]);
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      await first.cleanup();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
