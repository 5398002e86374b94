import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import yaml from 'js-yaml';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const OUTPOSTD = join(ROOT, 'dist', 'bin', 'outpostd.js');
export const OUTPOST = join(ROOT, 'dist', 'bin', 'outpost.js');

export interface Listener { name: string; protocol: string; host: string; port: number }

export interface DaemonOptions {
  /** Written to a YAML file and passed with --config; omit to run on the embedded defaults. */
  config?: Record<string, unknown>;
  /** Reuse a data directory (for restarts). */
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
  /**
   * A command the daemon runs under (e.g. strace and its options). `process` is then the wrapper's;
   * stopping it may leave the daemon running (strace detaches), so signal the daemon, its child.
   */
  wrapper?: string[];
}

/** How long stop() waits for the daemon to exit after SIGTERM (it exits within 5 s by itself). */
const STOP_WAIT_MS = 15_000;

/** A real outpostd child process on free loopback ports, with its JSON log lines collected. */
export class TestDaemon {
  readonly logs: any[] = [];
  /** What the daemon wrote to stderr (Node's warnings; its log is JSON on stdout). */
  stderr = '';
  listeners: Listener[] = [];
  private exitCode: Promise<number | null>;

  private constructor(readonly process: ChildProcess, readonly dataDir: string, readonly configFile: string | undefined) {
    this.exitCode = new Promise((resolve) => process.once('exit', (code) => resolve(code)));
  }

  static async start(options: DaemonOptions = {}): Promise<TestDaemon> {
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'outpost-test-'));
    const args = [OUTPOSTD, '--data-dir', dataDir];
    let configFile: string | undefined;
    if (options.config) {
      configFile = join(dataDir, 'outpost.yaml');
      writeFileSync(configFile, yaml.dump(withFreePorts(options.config)));
      args.push('--config', configFile);
    }
    const [command, ...commandArgs] = [...(options.wrapper ?? []), process.execPath, ...args];
    const child = spawn(command, commandArgs, {
      env: { ...process.env, NOTIFY_SOCKET: '', OUTPOST_CONFIG: '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const daemon = new TestDaemon(child, dataDir, configFile);
    try {
      await daemon.waitReady(options.startTimeoutMs ?? 15_000);
    } catch (error) {
      // a daemon that never got ready is not left running, nor the data directory made for it
      await daemon.kill();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
    return daemon;
  }

  private waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.process.stderr!.on('data', (chunk) => { this.stderr += chunk; });
      const timer = setTimeout(() => reject(new Error(`outpostd not ready in ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      const lines = createInterface({ input: this.process.stdout! });
      lines.on('line', (line) => {
        let entry: any;
        try { entry = JSON.parse(line); } catch { entry = { msg: line }; }
        this.logs.push(entry);
        if (entry.msg === 'outpostd ready') {
          this.listeners = entry.listeners;
          clearTimeout(timer);
          resolve();
        }
      });
      this.process.once('exit', (code) => {
        clearTimeout(timer);
        // a failed start is logged (JSON on stdout), not written to stderr
        const lastLogs = this.logs.slice(-5).map((entry) => JSON.stringify(entry)).join('\n');
        reject(new Error(`outpostd exited with ${code} before ready; stderr: ${this.stderr}; last log lines:\n${lastLogs}`));
      });
    });
  }

  port(name: string): number {
    const listener = this.listeners.find((l) => l.name === name);
    if (!listener) throw new Error(`no listener ${name}: ${JSON.stringify(this.listeners)}`);
    return listener.port;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.port('mqtt')}`;
  }

  get socket(): string {
    return this.listeners.find((l) => l.name === 'admin')!.host;
  }

  /**
   * SIGTERM and wait; resolves with the exit code. The daemon gives itself 5 s to stop; one still
   * running STOP_WAIT_MS after the signal is killed, and the wait fails with its last log lines
   * (rather than the test's hook timing out with nothing to go on).
   */
  async stop(): Promise<number | null> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), STOP_WAIT_MS); });
    const exited = await Promise.race([this.exitCode, late]);
    clearTimeout(timer);
    if (exited !== 'late') return exited;
    this.process.kill('SIGKILL');
    await this.exitCode;
    throw new Error(`outpostd did not exit within ${STOP_WAIT_MS} ms of SIGTERM; its last log lines:\n${this.logs.slice(-15).map((entry) => JSON.stringify(entry)).join('\n')}`);
  }

  /** kill -9: no chance to flush anything. */
  async kill(): Promise<void> {
    this.process.kill('SIGKILL');
    await this.exitCode;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Port 0 everywhere unless the test set one: the daemon picks free ports and reports them. */
function withFreePorts(config: Record<string, any>): Record<string, unknown> {
  const mqtt = { ...config.mqtt, host: config.mqtt?.host ?? '127.0.0.1', port: config.mqtt?.port ?? 0 };
  if (mqtt.tls) mqtt.tls = { host: '127.0.0.1', port: 0, ...mqtt.tls };
  if (mqtt.ws) mqtt.ws = { host: '127.0.0.1', port: 0, ...mqtt.ws };
  return { log: { level: 'info', format: 'json' }, ...config, mqtt, http: { port: 0, ...config.http }, s3: { host: '127.0.0.1', port: 0, ...config.s3 } };
}
