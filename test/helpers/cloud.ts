// The stand-in cloud of the sync tests: a real Mosquitto on a fixed free loopback port (kept
// across restarts, so the gateway reconnects to the same address), persistent, anonymous.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A second listener with TLS that requires a client certificate signed by `ca` (AWS IoT Core style). */
export interface CloudTls { ca: string; cert: string; key: string }

export class CloudBroker {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number, readonly dir: string, readonly tlsPort: number | undefined) {}

  /** `users`: user names and passwords the cloud takes, anonymous connections refused (see setUsers). */
  static async create(tls?: CloudTls, users?: Record<string, string>): Promise<CloudBroker> {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-cloud-'));
    // Started as root, Mosquitto drops to the user "mosquitto", which must be able to save its sessions here.
    chmodSync(dir, 0o777);
    const broker = new CloudBroker(await freePort(), dir, tls ? await freePort() : undefined);
    const tlsListener = tls
      ? [`listener ${broker.tlsPort} 127.0.0.1`, `cafile ${tls.ca}`, `certfile ${tls.cert}`, `keyfile ${tls.key}`, 'require_certificate true']
      : [];
    if (users) broker.setUsers(users);
    const authentication = users ? ['allow_anonymous false', `password_file ${join(dir, 'passwords')}`] : ['allow_anonymous true'];
    writeFileSync(join(dir, 'mosquitto.conf'), [
      ...authentication, 'persistence true', `persistence_location ${dir}/`,
      'max_queued_messages 0', 'max_inflight_messages 0', 'log_dest none',
      `listener ${broker.port} 127.0.0.1`, ...tlsListener, '',
    ].join('\n'));
    return broker;
  }

  /** Replaces the password file of a broker created with users; Mosquitto reads it when it starts. */
  setUsers(users: Record<string, string>): void {
    const file = join(this.dir, 'passwords');
    writeFileSync(file, '');
    for (const [user, password] of Object.entries(users)) execFileSync('mosquitto_passwd', ['-b', file, user, password]);
    chmodSync(file, 0o644);
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Starts Mosquitto and waits (bounded) until it accepts connections. */
  async start(): Promise<void> {
    const child = spawn('mosquitto', ['-c', join(this.dir, 'mosquitto.conf')], { stdio: 'ignore' });
    this.child = child;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (await accepts(this.port)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`mosquitto did not start on port ${this.port}`);
  }

  /** SIGTERM: Mosquitto saves its persistent sessions and exits. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 1000 });
    client.once('connect', () => { client.end(true); resolve(true); });
    // a CONNACK refusal (an error with its return code) is an answer too: a broker without anonymous access
    client.once('error', (error) => { client.end(true); resolve(typeof (error as { code?: unknown }).code === 'number'); });
    client.once('close', () => resolve(false));
  });
}

export interface CloudMessage { topic: string; payload: string; id?: string; seq?: number }

/**
 * A cloud-side subscriber with a persistent session that reconnects on its own: it sees every
 * message the cloud broker accepted, across broker restarts.
 */
export class CloudSubscriber {
  readonly messages: CloudMessage[] = [];
  private constructor(readonly client: MqttClient) {}

  static async connect(url: string, filter: string | string[], clientId = `cloud-sub-${process.pid}`): Promise<CloudSubscriber> {
    const client = mqtt.connect(url, { clientId, clean: false, reconnectPeriod: 100, connectTimeout: 2000, protocolVersion: 4 });
    const subscriber = new CloudSubscriber(client);
    client.on('message', (topic, payload) => {
      const text = payload.toString();
      let id: string | undefined;
      try { id = (JSON.parse(text) as { id?: string }).id; } catch { /* not an envelope */ }
      subscriber.messages.push({ topic, payload: text, id, seq: id ? Number(id.split(':').pop()) : undefined });
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync(filter, { qos: 1 });
    return subscriber;
  }

  async end(): Promise<void> {
    await this.client.endAsync(true);
  }
}
