import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { IConnackPacket, IPublishPacket, ISubackPacket, Packet, Parser } from 'mqtt-packet';

// Through require, as the broker loads it (src/broker/handlers/outgoing-writes.ts): the module object itself.
const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as {
  parser(options: { protocolVersion: number }): Parser;
  generate(packet: Packet, options: { protocolVersion: number }): Buffer;
};

/** What the sync agent uses of an MQTT client. */
export interface CloudClient {
  /** QoS 1: `done` once the cloud's PUBACK arrives; an error with a numeric `code` is an MQTT 5 PUBACK reason ≥ 0x80. */
  publish(topic: string, payload: Buffer | string, options: { qos: 0 | 1 }, done: (error?: Error) => void): void;
  subscribe(filters: Record<string, { qos: 0 | 1 }>, done: (error?: Error | null) => void): void;
  /**
   * Each message from the cloud; a QoS 1 message is acknowledged once `done` is called without an
   * error, after those that came before it (MQTT-4.6.0-2).
   */
  handleMessage: (packet: { topic: string; payload: Buffer | string }, done: (error?: Error) => void) => void;
  /** `connack`: the cloud's CONNACK, whose sessionPresent says the cloud kept the session (its subscriptions too), and MQTT 5 properties its limits. */
  on(event: 'connect', listener: (connack?: Connack) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  once(event: 'close', listener: () => void): this;
  /** Closes the connection (`force`: without DISCONNECT, as after a failure). */
  end(force?: boolean): void;
  /** Reads no more of the cloud's packets until `resume`: TCP holds the rest, and the cloud's sending waits. */
  pause(): void;
  resume(): void;
}

/** What the sync agent reads of a CONNACK (mqtt-packet's shape). */
export interface Connack {
  sessionPresent?: boolean;
  properties?: { maximumQoS?: number; retainAvailable?: boolean; maximumPacketSize?: number; receiveMaximum?: number };
}

export interface CloudClientOptions {
  clientId: string;
  username?: string;
  password?: string;
  keepalive: number;
  protocolVersion: 4 | 5;
  connectTimeout: number;
  clean: boolean;
  /** MQTT 5 only: how long the cloud keeps the session after the connection ends (MQTT 5 §3.1.2.11.2). */
  properties?: { sessionExpiryInterval: number };
}

/** The cloud ended the connection with an MQTT 5 DISCONNECT; `reasonCode` says why (0 when it gave none). */
export class ServerDisconnect extends Error {
  override readonly name = 'ServerDisconnect';

  constructor(readonly reasonCode: number) {
    super(`the cloud sent DISCONNECT${reasonCode ? ` (reason code 0x${reasonCode.toString(16)})` : ''}`);
  }
}

/** CONNACK return codes of MQTT 3.1.1 (§3.2.2.3) and reason codes of MQTT 5 (§3.2.2.2) a server refuses with. */
const CONNACK_REFUSALS: Record<4 | 5, Record<number, string>> = {
  4: { 1: 'unacceptable protocol version', 2: 'identifier rejected', 3: 'server unavailable', 4: 'bad user name or password', 5: 'not authorized' },
  5: {
    0x80: 'unspecified error', 0x81: 'malformed packet', 0x82: 'protocol error', 0x83: 'implementation specific error',
    0x84: 'unsupported protocol version', 0x85: 'client identifier not valid', 0x86: 'bad user name or password', 0x87: 'not authorized',
    0x88: 'server unavailable', 0x89: 'server busy', 0x8a: 'banned', 0x8c: 'bad authentication method', 0x90: 'topic name invalid',
    0x95: 'packet too large', 0x97: 'quota exceeded', 0x99: 'payload format invalid', 0x9a: 'retain not supported',
    0x9b: 'QoS not supported', 0x9c: 'use another server', 0x9d: 'server moved', 0x9f: 'connection rate exceeded',
  },
};
/** Refusals the next CONNECT gets again, until the operator changes the credentials, the cloud's policy or the client id. */
const REFUSED_FOR_GOOD: Record<4 | 5, ReadonlySet<number>> = { 4: new Set([1, 2, 4, 5]), 5: new Set([0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c]) };

/** The cloud's CONNACK refused the connection. `forGood`: retrying does not heal it (see REFUSED_FOR_GOOD). */
export class ConnectionRefused extends Error {
  override readonly name = 'ConnectionRefused';
  readonly forGood: boolean;

  constructor(readonly code: number, protocolVersion: 4 | 5) {
    const said = protocolVersion === 5 ? `reason code 0x${code.toString(16)}` : `return code ${code}`;
    super(`the cloud refused the connection: ${CONNACK_REFUSALS[protocolVersion][code] ?? 'unknown code'} (CONNACK ${said})`);
    this.forGood = REFUSED_FOR_GOOD[protocolVersion].has(code);
  }
}

/** An MQTT 5 PUBACK reason code ≥ 0x80. */
class ReasonCodeError extends Error {
  constructor(readonly code: number, what: string) {
    super(`${what} refused with reason code 0x${code.toString(16)}`);
  }
}

/**
 * A SUBACK refusing some of a SUBSCRIBE's filters: 0x80 (MQTT 3.1.1), a reason code ≥ 0x80 (MQTT 5),
 * e.g. a filter the cloud's policy does not allow; the others are granted.
 */
export class SubscribeRefused extends Error {
  constructor(readonly refused: ReadonlyArray<{ filter: string; code: number }>) {
    super(`the cloud refused the subscription to ${refused.map(({ filter, code }) => `${filter} (0x${code.toString(16)})`).join(', ')}`);
  }
}

/**
 * A small MQTT 3.1.1 / 5 client for the cloud link over one TCP, TLS or WebSocket stream, on mqtt-packet
 * (which the local broker already loads): CONNECT, QoS 0/1 PUBLISH both ways, SUBSCRIBE and
 * PINGREQ — all the sync agent needs. One instance is one connection; CloudLink makes a new one
 * per attempt. It replaces mqtt.js, whose client and streams cost the idle daemon about 9 MB of
 * resident memory while connected.
 */
export class LeanMqttClient extends EventEmitter implements CloudClient {
  handleMessage: CloudClient['handleMessage'] = (_packet, done) => done();
  private readonly parser;
  /** PUBACK / SUBACK waiters by packet identifier; an Error when the connection ended first. */
  private readonly waiting = new Map<number, (answer: Packet | Error) => void>();
  private nextId = 0;
  /**
   * The cloud's Receive Maximum (MQTT 5 CONNACK; 65535 when absent, and for 3.1.1): QoS 1 PUBLISHes
   * it takes unacknowledged at once (MQTT-3.3.4-9). Those beyond it wait in `held`, in order, for a
   * PUBACK; the sender's window (cloud.mqtt.maxInFlight) bounds how many.
   */
  private receiveMaximum = 65535;
  private unacknowledged = 0;
  private held: IPublishPacket[] = [];
  /** The cloud's QoS 1 PUBLISHes in the order they came, each with whether it was handled: PUBACKs go in that order (MQTT-4.6.0-2). */
  private readonly toAcknowledge: Array<{ messageId: number; handled: boolean }> = [];
  private lastHeard = performance.now();
  private readonly connectTimer: NodeJS.Timeout;
  private pingTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private corked = false;

  constructor(private readonly stream: Duplex, private readonly options: CloudClientOptions) {
    super();
    // First, so that nothing below can leave the socket's errors unhandled (they would end the daemon).
    stream.on('error', (error) => this.fail(error));
    stream.on('close', () => this.closeDown());
    // The cloud's end of the stream ends the connection (a WebSocket stream would wait for this side's end before its 'close').
    stream.on('end', () => stream.destroy());
    this.parser = mqttPacket.parser({ protocolVersion: options.protocolVersion });
    this.parser.on('packet', (packet: Packet) => this.received(packet));
    this.parser.on('error', (error: Error) => this.fail(error));
    stream.on('data', (chunk: Buffer) => {
      this.lastHeard = performance.now();
      this.parser.parse(chunk);
    });
    // Written before the socket is up: the stream holds it until then.
    this.send({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: options.protocolVersion, clientId: options.clientId, clean: options.clean,
      keepalive: options.keepalive, username: options.username, password: options.password === undefined ? undefined : Buffer.from(options.password),
      ...(options.protocolVersion === 5 && options.properties ? { properties: options.properties } : {}),
    });
    this.connectTimer = setTimeout(() => this.fail(new Error(`no CONNACK within ${options.connectTimeout} ms`)), options.connectTimeout);
  }

  publish(topic: string, payload: Buffer | string, options: { qos: 0 | 1 }, done: (error?: Error) => void): void {
    if (this.closed) return done(new Error('connection closed'));
    if (options.qos === 0) {
      this.send({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false }, () => done());
      return;
    }
    const messageId = this.allocateId();
    this.waiting.set(messageId, (answer) => {
      if (answer instanceof Error) return done(answer);
      this.unacknowledged--;
      this.sendHeld();
      const reason = (answer as { reasonCode?: number }).reasonCode;
      done(reason !== undefined && reason >= 0x80 ? new ReasonCodeError(reason, 'PUBLISH') : undefined);
    });
    const packet: IPublishPacket = { cmd: 'publish', topic, payload, qos: 1, messageId, retain: false, dup: false };
    if (this.unacknowledged < this.receiveMaximum && this.held.length === 0) this.sendPublish(packet);
    else this.held.push(packet);
  }

  private sendPublish(packet: IPublishPacket): void {
    this.unacknowledged++;
    this.send(packet);
  }

  private sendHeld(): void {
    while (this.held.length > 0 && this.unacknowledged < this.receiveMaximum) this.sendPublish(this.held.shift()!);
  }

  subscribe(filters: Record<string, { qos: 0 | 1 }>, done: (error?: Error | null) => void): void {
    if (this.closed) return done(new Error('connection closed'));
    const messageId = this.allocateId();
    const topics = Object.keys(filters);
    this.waiting.set(messageId, (answer) => {
      if (answer instanceof Error) return done(answer);
      // MQTT-3.9.3-1: one return code per filter, in the SUBSCRIBE's order
      const refused = topics.flatMap((filter, index) => {
        const code = (answer as ISubackPacket).granted[index];
        return typeof code === 'number' && code >= 0x80 ? [{ filter, code }] : [];
      });
      done(refused.length === 0 ? null : new SubscribeRefused(refused));
    });
    this.send({ cmd: 'subscribe', messageId, subscriptions: topics.map((topic) => ({ topic, qos: filters[topic].qos })) });
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  end(force = false): void {
    if (!this.closed && !force) this.send({ cmd: 'disconnect' });
    if (force) this.stream.destroy();
    else this.stream.end();
    this.closeDown();
  }

  private received(packet: Packet): void {
    switch (packet.cmd) {
      case 'connack':
        return this.connected(packet);
      case 'puback':
      case 'suback': {
        const waiter = this.waiting.get(packet.messageId!);
        this.waiting.delete(packet.messageId!);
        return waiter?.(packet);
      }
      case 'publish':
        return this.deliver(packet);
      case 'disconnect':
        return this.fail(new ServerDisconnect(packet.reasonCode ?? 0));
      default:
        // PINGRESP: lastHeard is enough.
    }
  }

  private connected(packet: IConnackPacket): void {
    clearTimeout(this.connectTimer);
    const code = packet.returnCode ?? packet.reasonCode ?? 0;
    if (code !== 0) return this.fail(new ConnectionRefused(code, this.options.protocolVersion));
    this.receiveMaximum = packet.properties?.receiveMaximum ?? 65535;
    // MQTT-3.2.2-21: a Server Keep Alive in the CONNACK replaces the one this side asked for.
    const period = (packet.properties?.serverKeepAlive ?? this.options.keepalive) * 1000;
    // MQTT-3.1.2-24: the server gives up after 1.5 × keepalive of silence; so does this side.
    if (period > 0) {
      this.pingTimer = setInterval(() => {
        if (performance.now() - this.lastHeard > 1.5 * period) this.fail(new Error('keepalive timeout'));
        else this.send({ cmd: 'pingreq' });
      }, period);
    }
    this.emit('connect', packet);
  }

  private deliver(packet: IPublishPacket): void {
    if (packet.qos === 0) return this.handleMessage(packet, () => undefined);
    const entry = { messageId: packet.messageId!, handled: false };
    this.toAcknowledge.push(entry);
    this.handleMessage(packet, (error) => {
      if (this.closed) return;
      // it would hold back every later PUBACK: the cloud sends it again on the next connection (MQTT-4.4.0-1)
      if (error) return this.fail(error);
      entry.handled = true;
      while (this.toAcknowledge[0]?.handled) this.send({ cmd: 'puback', messageId: this.toAcknowledge.shift()!.messageId });
    });
  }

  /** 1-65535, skipping identifiers still waiting for their answer (MQTT-2.3.1-2). */
  private allocateId(): number {
    do this.nextId = (this.nextId % 65535) + 1;
    while (this.waiting.has(this.nextId));
    return this.nextId;
  }

  /** Packets written in one tick leave in one write (the sender publishes its window in a burst). */
  private send(packet: Packet, written?: () => void): void {
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(() => {
        this.corked = false;
        this.stream.uncork();
      });
    }
    this.stream.write(mqttPacket.generate(packet, { protocolVersion: this.options.protocolVersion }), written);
  }

  private fail(error: Error): void {
    if (this.closed) return;
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.stream.destroy();
    this.closeDown();
  }

  private closeDown(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
    // 'close' first: the sender notes the oldest unacknowledged publish (the suspect of a refusal)
    // before the unanswered ones fail; they are still in the outbox and go again on the next connection.
    this.emit('close');
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    this.held = [];
    for (const waiter of waiting) waiter(new Error('connection closed before the answer'));
  }
}
