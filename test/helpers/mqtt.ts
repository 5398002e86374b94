import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { OUTPOST } from './daemon.js';

/** Connects with mqtt.js; rejects with the CONNACK error (code in `.code`) instead of reconnecting. */
export function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...options });
    client.once('connect', () => resolve(client));
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
    client.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
}

/** Connects and collects from the first packet on — queued messages can arrive in the same read as CONNACK. */
export function connectAndCollect(url: string, options: IClientOptions, count: number, timeoutMs = 5000) {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...options });
  const messages = collectMessages(client, count, timeoutMs);
  return { client, messages };
}

/** SUBACK return codes, 0x80 included (mqtt.js reports a refused filter as an error carrying the packet). */
export async function subscribeGranted(client: MqttClient, topics: string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  try {
    return (await client.subscribeAsync(topics, { qos })).map((grant) => grant.qos);
  } catch (error) {
    const granted = (error as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw error;
    return granted;
  }
}

/** Collects messages arriving on a client, resolved once `count` arrived (bounded by a timeout). */
export function collectMessages(client: MqttClient, count: number, timeoutMs = 5000): Promise<Array<{ topic: string; payload: string; retain: boolean; qos: number }>> {
  const received: Array<{ topic: string; payload: string; retain: boolean; qos: number }> = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`got ${received.length} of ${count} messages: ${JSON.stringify(received.slice(-5))}`));
    }, timeoutMs);
    function onMessage(topic: string, payload: Buffer, packet: { retain: boolean; qos: number }) {
      received.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos });
      if (received.length >= count) {
        clearTimeout(timer);
        client.off('message', onMessage);
        resolve(received);
      }
    }
    client.on('message', onMessage);
  });
}

/** Messages that arrive within `ms` — for asserting that nothing arrives. */
export async function messagesWithin(client: MqttClient, ms: number): Promise<string[]> {
  const topics: string[] = [];
  const onMessage = (topic: string) => topics.push(topic);
  client.on('message', onMessage);
  await new Promise((resolve) => setTimeout(resolve, ms));
  client.off('message', onMessage);
  return topics;
}

/** One request to the admin API over its Unix socket, as the CLI makes it: status and body text, or undefined when no answer came within 10 s. */
export function adminRequest(socketPath: string, method: string, path: string, body?: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath, method, path, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      res.on('error', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

/** Runs the admin CLI against a daemon's socket; resolves with stdout, stderr and the exit code. */
export function outpost(socket: string, args: string[], stdin?: string | Buffer): Promise<{ code: number; stdout: string; stderr: string }> {
  return runOutpost(['--socket', socket, ...args], { stdin });
}

/** Runs the admin CLI with exactly these arguments, `env` added to the environment; killed after `timeoutMs`. */
export function runOutpost(args: string[], options: { stdin?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const { stdin, env, timeoutMs = 20_000 } = options;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [OUTPOST, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    // decoded across reads: a character's bytes may come in two
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}

export async function addThing(socket: string, name: string, password: string, policy?: { publish?: string[]; subscribe?: string[]; clientIds?: string[] }): Promise<void> {
  const added = await outpost(socket, ['things', 'add', name, '--password-stdin'], password);
  if (added.code !== 0) throw new Error(`things add failed: ${added.stderr}`);
  if (policy) {
    const args = ['things', 'policy', name];
    for (const filter of policy.publish ?? []) args.push('--publish', filter);
    for (const filter of policy.subscribe ?? []) args.push('--subscribe', filter);
    for (const pattern of policy.clientIds ?? []) args.push('--client-id', pattern);
    const set = await outpost(socket, args);
    if (set.code !== 0) throw new Error(`things policy failed: ${set.stderr}`);
  }
}

/** Runs a Mosquitto command-line client (mosquitto_pub / mosquitto_sub) with a time bound. */
export function mosquittoClient(command: 'mosquitto_pub' | 'mosquitto_sub', args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** A raw TCP socket that sends hand-made MQTT packets and parses what comes back. */
export class RawMqtt {
  readonly packets: any[] = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet) => this.packets.push(packet));
    socket.on('data', (data) => parser.parse(data));
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawMqtt> {
    return new Promise((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1', () => resolve(new RawMqtt(socket)));
      socket.once('error', reject);
    });
  }

  send(packet: Record<string, unknown> | Buffer): void {
    this.socket.write(Buffer.isBuffer(packet) ? packet : mqttPacket.generate(packet as any));
  }

  /** Waits until a packet matching `predicate` arrived or the socket closed, bounded by `timeoutMs`. */
  async waitFor(predicate: (packet: any) => boolean, timeoutMs = 5000): Promise<any | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.packets.find(predicate);
      if (found || this.closed) return found;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return undefined;
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return this.closed;
  }

  end(): void {
    this.socket.destroy();
  }
}

export interface PublishUntilCutOptions {
  client: IClientOptions;
  /** The message of sequence number `seq`. */
  message: (seq: number) => { topic: string; payload: string };
  /** The first sequence number (default 0); at most 100,000 are sent. */
  startAt?: number;
  killAfterMs: number;
  kill: () => void;
  /** PUBLISHes in flight awaiting PUBACK (default 20). */
  window?: number;
}

/**
 * Publishes at QoS 1 with a window of messages in flight, calls `kill` after `killAfterMs`, and
 * resolves once the connection drops with the sequence numbers that got a PUBACK.
 */
export function publishUntilCut(url: string, options: PublishUntilCutOptions): Promise<number[]> {
  const { message, killAfterMs, kill, startAt = 0, window = 20 } = options;
  return new Promise((resolve) => {
    const acked: number[] = [];
    const client = mqtt.connect(url, { reconnectPeriod: 0, protocolVersion: 4, ...options.client });
    let next = startAt;
    let stopped = false;
    const deadline = setTimeout(finish, killAfterMs + 10_000);
    function finish() {
      if (stopped) return;
      stopped = true;
      clearTimeout(deadline);
      client.end(true);
      resolve(acked);
    }
    function sendOne() {
      if (stopped || next >= startAt + 100_000) return;
      const seq = next++;
      const { topic, payload } = message(seq);
      client.publish(topic, payload, { qos: 1 }, (error) => {
        if (!error) acked.push(seq);
        sendOne();
      });
    }
    client.on('connect', () => {
      for (let i = 0; i < window; i++) sendOne();
      setTimeout(kill, killAfterMs);
    });
    client.on('close', finish);
    client.on('error', finish);
  });
}
