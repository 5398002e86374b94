import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { invoke, template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';

// As functions-python.test.ts: the real interpreter behind `python3`.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

/** The error documents of Lambda's Python runtime (awslambdaric's make_error and its stack traces). */
describe('functions: Python errors in the shape of Lambda\'s Python runtime', () => {
  let daemon: TestDaemon;
  const cleanups: Array<() => void> = [];

  /** Deploys a one-function package of python3.11 (`files` beside its template) and expects it to be taken. */
  async function deploy(name: string, files: Record<string, string>, properties: Record<string, unknown> = {}): Promise<string> {
    const pkg = writePackage({ 'template.yaml': template(name, { Handler: 'app.handler', Runtime: 'python3.11', ...properties }), ...files });
    cleanups.push(pkg.remove);
    const deployed = await outpost(daemon.socket, ['deploy', pkg.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
    return pkg.dir;
  }

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { functions: { pythonPath: PYTHON, idleTimeoutSeconds: 60 } } });
  });

  afterAll(async () => {
    for (const cleanup of cleanups) cleanup();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
  });

  it('gives a stack trace of the handler\'s frames as Lambda formats them: file, line, function and text, no column markers', async () => {
    await deploy('PyCarets', {
      // Python 3.11 and later mark the failing part of such a line with ^^^ in a formatted traceback.
      'app.py': 'def parse(text):\n    return 1 + int(text) * 2\n\ndef handler(event, context):\n    return parse(event["n"]) + 0\n',
    });
    const { result } = await invoke(daemon.socket, 'PyCarets', { n: 'x' });
    expect(result.payload).toMatchObject({ errorType: 'ValueError', errorMessage: "invalid literal for int() with base 10: 'x'", requestId: result.requestId });
    expect(result.payload.stackTrace).toEqual([
      expect.stringMatching(/^ {2}File "[^"]+\/app\.py", line 5, in handler\n {4}return parse\(event\["n"\]\) \+ 0\n$/),
      expect.stringMatching(/^ {2}File "[^"]+\/app\.py", line 2, in parse\n {4}return 1 \+ int\(text\) \* 2\n$/),
    ]);
  });

  it('keeps the runtime\'s own frame when the handler cannot even be called, as Lambda\'s does', async () => {
    await deploy('PyArity', { 'app.py': 'def handler(event):\n    return event\n' });
    const { result } = await invoke(daemon.socket, 'PyArity', {});
    expect(result.payload).toMatchObject({ errorType: 'TypeError', errorMessage: 'handler() takes 1 positional argument but 2 were given' });
    expect(result.payload.stackTrace).toEqual([expect.stringMatching(/^ {2}File "[^"]+\/bootstrap\.py", line \d+, in main\n {4}.*\bhandler\(/)]);
  });

  it('answers an invocation whose environment failed to load its handler with requestId "" and an empty stackTrace, as Lambda does', async () => {
    // Loads at deploy; once the flag exists, a new environment fails to import a module.
    const flag = join(daemon.dataDir, 'py-later-flag');
    await deploy('PyLater', {
      'app.py': 'import os\nif os.path.exists(os.environ["FLAG"]):\n    import not_installed_anywhere\n\ndef handler(event, context):\n    return "ok"\n',
    }, { Environment: { Variables: { FLAG: flag } } });
    writeFileSync(flag, '');
    try {
      const { result } = await invoke(daemon.socket, 'PyLater', {});
      expect(result.payload).toEqual({
        errorType: 'Runtime.ImportModuleError',
        errorMessage: "Unable to import module 'app': No module named 'not_installed_anywhere'",
        requestId: '',
        stackTrace: [],
      });
    } finally {
      rmSync(flag);
    }
  });
  it('answers a syntax error with the file, the line and its text as the stack trace, and logs them', async () => {
    // Loads at deploy; once the flag exists, the handler's module imports one that does not parse.
    const flag = join(daemon.dataDir, 'py-syntax-flag');
    await deploy('PySyntax', {
      'app.py': 'import os\nif os.path.exists(os.environ["FLAG"]):\n    import helpers\n\ndef handler(event, context):\n    return "ok"\n',
      'helpers.py': 'X = 1\ndef broken(:\n    pass\n',
    }, { Environment: { Variables: { FLAG: flag } } });
    writeFileSync(flag, '');
    try {
      const { result } = await invoke(daemon.socket, 'PySyntax', {});
      expect(result.payload).toMatchObject({ errorType: 'Runtime.UserCodeSyntaxError', errorMessage: "Syntax error in module 'app': invalid syntax (helpers.py, line 2)", requestId: '' });
      // awslambdaric's form, `Line` and no comma
      expect(result.payload.stackTrace).toEqual([expect.stringMatching(/^ {2}File "[^"]+\/helpers\.py" Line 2\n {4}def broken\(:\n$/)]);
      const logFile = join(daemon.dataDir, 'functions', 'PySyntax', 'logs', 'function.log');
      const log = await eventually(() => { const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''; return text.includes('REPORT RequestId') && text; });
      expect(log).toMatch(/\[ERROR\] Runtime\.UserCodeSyntaxError: Syntax error in module 'app': invalid syntax \(helpers\.py, line 2\)\rTraceback \(most recent call last\):\r\u00a0{2}File "[^"\r\n]+\/helpers\.py" Line 2\r\u00a0{4}def broken\(:\nINIT_REPORT /);
    } finally {
      rmSync(flag);
    }
  });
  it('ends the process on sys.exit() in a handler, as Lambda\'s runtime (it catches Exception only), and runs the next event on a fresh one', async () => {
    await deploy('PyExits', { 'app.py': 'import os, sys\ndef handler(event, context):\n    if "code" in event:\n        sys.exit(event["code"])\n    return os.getpid()\n' });
    const before = (await invoke(daemon.socket, 'PyExits', {})).result.payload;
    const clean = await invoke(daemon.socket, 'PyExits', { code: 0 });
    expect(clean.result.payload).toEqual({ errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${clean.result.requestId} Error: Runtime exited without providing a reason` });
    const message = await invoke(daemon.socket, 'PyExits', { code: 'giving up' });
    expect(message.result.payload).toEqual({ errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${message.result.requestId} Error: Runtime exited with error: exit status 1` });
    const logFile = join(daemon.dataDir, 'functions', 'PyExits', 'logs', 'function.log');
    const log = await eventually(() => { const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''; return text.includes(`END RequestId: ${message.result.requestId}`) && text; });
    expect(log).toMatch(new RegExp(`START RequestId: ${message.result.requestId}[^\\n]*\\ngiving up\\n`));
    const after = (await invoke(daemon.socket, 'PyExits', {})).result.payload;
    expect(typeof after).toBe('number');
    expect(after).not.toBe(before);
  });

  it('takes at most one connection to the Runtime API besides the runtime\'s own: a handler cannot make the daemon hold its posts', async () => {
    // each extra connection would post a 1 MB result and hold it unfinished in the daemon
    const handler = [
      'import os, socket',
      'def handler(event, context):',
      '    path = os.environ["AWS_LAMBDA_RUNTIME_API"][5:]',
      '    held, taken = [], 0',
      '    for i in range(8):',
      '        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
      '        try:',
      '            s.connect(path)',
      '            s.sendall(b"POST /2018-06-01/runtime/invocation/fake%d/error HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 1048576\\r\\n\\r\\n" % i)',
      '            s.settimeout(2)',
      '            s.sendall(b"x" * 1048575)',
      '            s.settimeout(0.5)',
      '            try:',
      '                taken += 0 if s.recv(1) == b"" else 1',
      '            except socket.timeout:',
      '                taken += 1',
      '        except OSError:',
      '            pass',
      '        held.append(s)',
      '    return {"taken": taken}',
    ].join('\n') + '\n';
    await deploy('PyRuntimeApiFlood', { 'app.py': handler }, { Timeout: 60 });
    const { result } = await invoke(daemon.socket, 'PyRuntimeApiFlood');
    expect(result.payload, JSON.stringify(result)).toMatchObject({ taken: expect.any(Number) });
    expect(result.payload.taken).toBeLessThanOrEqual(1);
  }, 60_000);
});
