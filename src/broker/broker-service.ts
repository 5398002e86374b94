import type { EventEmitter } from 'node:events';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import type { Logger } from 'pino';
import type { Listener, Service, ServiceContext, ServiceHealth } from '../service.js';
import type { BusMessage, LocalBus } from '../bus.js';
import { AwaitingRelLimitError, SqlitePersistence } from './persistence/sqlite-persistence.js';
import { reportStoredSessions } from './session-present.js';
import { ThingRegistry } from './things/registry.js';
import { Sessions, type Session } from './sessions.js';
import { BrokerMetrics } from './metrics.js';
import { createAuthenticate, createPreConnect } from './handlers/connect.js';
import { wildcardSkipsTopic } from './topic.js';
import { keepRetainedInFlight } from './handlers/retained-in-flight.js';
import { skipIdentifiersInFlight } from './handlers/packet-identifiers.js';
import { skipDeliveriesAfterClose } from './handlers/closed-connections.js';
import { DROPPED_TOPIC, createAuthorizeForward, createAuthorizePublish, createAuthorizeSubscribe, deliverAtGrantedQos } from './handlers/authorize.js';
import { followGrants } from './handlers/overlapping-filters.js';
import { OutgoingWrites } from './handlers/outgoing-writes.js';
import { ReceiveBudget, limitPacketSize } from './handlers/packet-size.js';
import { parsePublishesDirectly } from './handlers/incoming-parse.js';
import { refuseRetainedOnReservedTopics } from './handlers/reserved-topics.js';
import { refuseLongFilters } from './handlers/filter-length.js';
import { refuseMalformedPackets } from './handlers/malformed-packets.js';
import { keepPacketOrder } from './handlers/packet-order.js';
import { deliverOvertakenMessages } from './handlers/publish-order.js';
import { rememberRepeatedFilters } from './handlers/repeated-filters.js';
import { takeOverClientIdsInTurn } from './handlers/client-id-takeovers.js';
import { MqttListeners, type WebSocketMessages } from './listeners.js';
import { publishOrphanedWills } from './handlers/orphaned-wills.js';
import { randomUUID } from 'node:crypto';
import { registerBrokerAdminRoutes } from './admin-routes.js';
import { bindPolicy, mayPublish } from './policy.js';
import { SessionExpiry } from './session-expiry.js';
import { sessionsOfThing } from './thing-sessions.js';
import { StorageFailures } from './handlers/storage-failures.js';
import { SystemTopics } from './handlers/sys-topics.js';

/** aedes' drainTimeout: how long a client's socket may take nothing before it is cut off. */
const DRAIN_TIMEOUT_MS = 10_000;

export interface ConnectedClient {
  id: string;
  thing: string | null;
  via: string;
  address: string;
  since: number;
  clean: boolean;
  subscriptions: string[];
  /** Messages stored for this session awaiting delivery or PUBACK (persistent sessions only). */
  queued: number;
}

/** The MQTT broker: aedes with SQLite persistence, things and policies, and its listeners. */
export class BrokerService implements Service, LocalBus {
  readonly name = 'broker';
  readonly things: ThingRegistry;
  private readonly sessions = new Sessions();
  private readonly connectBudget = new ReceiveBudget(8 * 1024 * 1024);
  private readonly packetBudget: ReceiveBudget;
  private readonly metrics: BrokerMetrics;
  private readonly persistence: SqlitePersistence;
  private readonly outgoing: OutgoingWrites;
  private readonly listenersSet: MqttListeners;
  private readonly log: Logger;
  private readonly expiry: SessionExpiry;
  private broker: Aedes | undefined;
  private systemTopics: SystemTopics | undefined;
  private readonly storageFailures: StorageFailures;
  /** The daemon's own publishes in flight, by brokerCounter, with a durable subscriber's refusal if any. */
  private readonly ownPublishRefusals = new Map<number, Error | undefined>();

  constructor(private readonly context: Omit<ServiceContext, 'bus' | 'dataPlaneAuth'>) {
    const { config, store } = context;
    this.log = context.log.child({ service: 'broker' });
    this.things = new ThingRegistry(store);
    this.packetBudget = new ReceiveBudget(config.mqtt.maxReceivingBytes);
    this.persistence = new SqlitePersistence({
      store,
      maxQueuedMessages: config.mqtt.maxQueuedMessages,
      maxQueuedBytes: config.mqtt.maxQueuedBytesPerSession,
      maxInflightMessages: config.mqtt.maxInflightMessages,
      maxRetained: config.mqtt.maxRetained,
      maxRetainedBytes: config.mqtt.maxRetainedBytes,
      maxAwaitingRel: config.mqtt.maxAwaitingRel,
      maxAwaitingRelBytes: config.mqtt.maxAwaitingRelBytes,
      maxAwaitingRelBytesInMemory: config.mqtt.maxAwaitingRelBytesInMemory,
      willOwner: (client) => this.sessions.get(client as Client)?.thing ?? null,
      onDrop: (reason: 'queue-full' | 'retained-limit') => {
        this.metrics.dropped[reason === 'queue-full' ? 'queue_full' : 'retained_limit']++;
      },
    });
    reportStoredSessions(this.persistence);
    this.outgoing = new OutgoingWrites({ perClient: config.mqtt.maxClientBacklogBytes, total: config.mqtt.maxBacklogBytes }, {
      sent: () => { this.metrics.messagesOut++; },
      dropped: () => { this.metrics.dropped.slow_consumer++; },
    });
    this.listenersSet = new MqttListeners(config.mqtt, (stream, _socket, request, messages) => this.accept(stream, request, messages), (reason) => this.metrics.refused[reason]++);
    this.metrics = new BrokerMetrics(context.metrics, {
      connections: () => this.listenersSet.connections(),
      bytesIn: () => this.listenersSet.bytesIn(),
      bytesOut: () => this.listenersSet.bytesOut(),
      backlogBytes: () => this.outgoing.backlogBytes(),
    });
    this.expiry = new SessionExpiry(config.mqtt.persistentSessionExpiry * 1000, this.persistence, (clientId) => {
      const client = (this.broker as unknown as { clients: Record<string, Client | undefined> } | undefined)?.clients[clientId];
      return client !== undefined && !client.closed;
    }, (clientIds) => this.log.info({ clientIds }, 'persistent sessions expired'),
    (error) => this.log.error({ err: error }, 'could not end expired persistent sessions'));
    this.storageFailures = new StorageFailures(this.log, () => this.metrics.refused.storage_failed++);
    registerBrokerAdminRoutes(context.admin, this, context.accessKeys);
  }

  async start(): Promise<void> {
    const { mqtt } = this.context.config;
    const persistence = this.persistence;
    const deps = {
      mqtt, things: this.things, sessions: this.sessions, metrics: this.metrics,
      store: {
        get storedFilters() { return persistence.storedFilters; },
        storedSessionIds: () => persistence.storedSessionIds(),
        storesFilter: (clientId: string, filter: string) => persistence.storesFilter(clientId, filter),
        forgetFilter: (client: Client, filter: string) => {
          persistence.removeSubscriptions(client, [filter]).catch((error: Error) => this.log.error({ err: error, clientId: client.id, filter }, 'could not drop a stored subscription its policy no longer allows'));
        },
        takeResent: (clientId: string, messageId: number) => persistence.takeResent(clientId, messageId),
        queueDelivery: (client: Client, packet: AedesPublishPacket) => persistence.queueDelivery(client, packet),
      },
    };
    this.broker = await Aedes.createBroker({
      // A fresh id per run marks the previous run's wills as orphaned (see publishOrphanedWills).
      id: `outpost-${randomUUID()}`,
      persistence: this.persistence,
      connectTimeout: mqtt.connectTimeout * 1000,
      // one connection's QoS 2 PUBLISHes held until their PUBREL (aedes' own bound is 1000 of maxPacketSize each)
      maxInflightInbound: mqtt.maxAwaitingRel,
      // a client whose socket takes QoS 1/2 messages no more for this long is cut off (QoS 0 ones
      // are dropped at maxClientBacklogBytes instead): aedes delivers nothing to anyone meanwhile
      drainTimeout: DRAIN_TIMEOUT_MS,
      preConnect: expiringPreConnect(this.expiry, createPreConnect(deps)),
      authenticate: createAuthenticate(deps),
      authorizePublish: refuseRetainedOnReservedTopics(createAuthorizePublish(deps), this.metrics),
      authorizeSubscribe: refuseLongFilters(createAuthorizeSubscribe(deps), { maxFilterBytes: mqtt.maxFilterBytes, metrics: this.metrics, storesFilter: deps.store.storesFilter }),
      authorizeForward: createAuthorizeForward(deps),
      published: (packet: AedesPublishPacket, client: Client, done: (error?: Error | null) => void) => {
        this.outgoing.release(packet, client);
        this.persistence.forgetPublication(packet.payload);
        done(null);
      },
    });
    takeOverClientIdsInTurn(this.broker);
    // aedes emits 'error' when its persistence fails outside a client's request (the periodic clean-up
    // of wills, a subscription lookup): logged, as an emitter's 'error' without a listener would end the daemon
    // (aedes' typings leave the event out)
    (this.broker as unknown as EventEmitter).on('error', (error: Error) => this.log.error({ err: error }, 'broker persistence failed'));
    // A connection is closed once, but its refusal may be reported again for each packet or write it had under way
    const closedClients = new WeakSet<Client>();
    const closedFor = (client: Client, reason: 'awaiting_rel_limit' | 'slow_consumer'): boolean => {
      if (closedClients.has(client)) return false;
      closedClients.add(client);
      this.metrics.refused[reason]++;
      return true;
    };
    this.broker.on('clientError', (client: Client, error: Error) => {
      if (this.storageFailures.closedBy(client.id, error)) return;
      // aedes' refusal of one connection's (a message, no class)
      if (error instanceof AwaitingRelLimitError || error.message.startsWith('maxInflightInbound exceeded')) closedFor(client, 'awaiting_rel_limit');
      // aedes' drainTimeout: a client that took nothing it was sent for that long
      if (error.message === 'drain timeout' && closedFor(client, 'slow_consumer')) {
        this.log.warn({ clientId: client.id }, `disconnected a client that took nothing sent to it for ${DRAIN_TIMEOUT_MS / 1000} s`);
      }
      this.log.debug({ clientId: client.id, err: error.message }, 'client error');
    });
    this.broker.on('connectionError', (client: Client, error: Error) => this.log.debug({ clientId: client.id, err: error.message }, 'connection error'));
    this.broker.on('unsubscribe', (filters: string[], client: Client) => this.sessions.removeFilters(client, filters));
    followGrants(this.broker, this.persistence);
    this.broker.on('keepaliveTimeout', (client: Client) => this.log.info({ clientId: client.id }, 'keep-alive timeout'));
    const wills = await publishOrphanedWills(this.broker, this.persistence, { things: this.things, mqtt });
    if (wills.published > 0) this.log.info({ wills: wills.published }, 'published wills of clients cut off by the previous run');
    if (wills.dropped.length > 0) {
      this.metrics.dropped.not_authorized += wills.dropped.length;
      this.log.warn({ clientIds: wills.dropped }, 'dropped wills of clients cut off by the previous run that the configuration no longer allows');
    }
    this.expiry.start();
    this.systemTopics = new SystemTopics(this.broker, {
      connectedClients: () => this.listenersSet.connections(),
      messagesReceived: () => this.metrics.messagesIn,
      messagesSent: () => this.metrics.messagesOut,
      messagesDropped: () => Object.values(this.metrics.dropped).reduce((sum, count) => sum + count, 0),
      bytesReceived: () => this.listenersSet.bytesIn(),
      bytesSent: () => this.listenersSet.bytesOut(),
      retainedMessages: () => this.persistence.retainedMessages,
    }, mqtt.sysIntervalSeconds * 1000);
    this.systemTopics.start();
  }

  async listen(): Promise<void> {
    await this.listenersSet.start();
  }

  async stop(): Promise<void> {
    this.expiry.stop();
    this.systemTopics?.stop();
    const listenersClosed = this.listenersSet.stop();
    const broker = this.broker;
    this.broker = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    this.listenersSet.destroyConnections();
    await listenersClosed;
    await this.persistence.destroy();
    this.outgoing.dispose();
  }

  /**
   * Resolves once every subscriber took the message; rejects with the refusal of a durable
   * subscriber (e.g. the sync outbox when full under reject-new), so the daemon's own publishers
   * can hold the message back the way a device's publish loses its PUBACK.
   */
  publish(message: { topic: string; payload: Buffer | string; qos?: 0 | 1 | 2; retain?: boolean }): Promise<void> {
    const broker = this.running();
    // aedes keeps a brokerCounter given to it: it names this publish in `deliver` below.
    const brokerCounter = ++(broker as unknown as { counter: number }).counter;
    this.ownPublishRefusals.set(brokerCounter, undefined);
    return new Promise((resolve, reject) => broker.publish({
      cmd: 'publish',
      topic: message.topic,
      payload: typeof message.payload === 'string' ? Buffer.from(message.payload) : message.payload,
      qos: message.qos ?? 0,
      retain: message.retain ?? false,
      dup: false,
      brokerCounter,
    } as Parameters<Aedes['publish']>[0], (error) => {
      const refusal = this.ownPublishRefusals.get(brokerCounter);
      this.ownPublishRefusals.delete(brokerCounter);
      const failure = error ?? refusal;
      if (failure) reject(failure);
      else resolve();
    }));
  }

  get maxPacketBytes(): number {
    return this.context.config.mqtt.maxPacketSize;
  }

  hasSubscribers(topic: string): boolean {
    // Connected clients' and the daemon's own subscriptions are in aedes' emitter; offline persistent sessions' in the persistence.
    const emitter = (this.running() as unknown as { mq: { _matcher: { match(topic: string): unknown[] } } }).mq._matcher;
    return emitter.match(topic).length > 0 || this.persistence.hasSubscriptionFor(topic);
  }

  async subscribe(filter: string, handler: (message: BusMessage) => void | Promise<void>, options: { durable?: boolean } = {}): Promise<() => Promise<void>> {
    const broker = this.running();
    const deliver = (packet: AedesPublishPacket, done: (error?: Error) => void) => {
      // a PUBLISH the policy refused (authorizePublish retargets it there) reaches none of the
      // daemon's subscribers: a function triggered by `$outpost/#` would run with the refused payload
      // and, as for a client, a filter starting with a wildcard gets no `$` topic (a function or sync
      // rule on `#` got every shadow answer, $SYS event and object event)
      if (packet.topic === DROPPED_TOPIC || wildcardSkipsTopic(filter, packet.topic)) return done();
      const message: BusMessage = { topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, retain: packet.retain, clientId: (packet as { clientId?: string }).clientId };
      const handled = Promise.resolve().then(() => handler(message));
      if (options.durable) {
        // the connection that sent it, now: after the handler, the client id may be another's (a takeover)
        const publisher = message.clientId === undefined ? undefined : (broker as unknown as { clients: Record<string, Client | undefined> }).clients[message.clientId];
        handled.then(() => done(), (error: Error) => {
          const { brokerId, brokerCounter: counter } = packet as { brokerId?: string; brokerCounter?: number };
          if (message.clientId === undefined && brokerId === broker.id && counter !== undefined && this.ownPublishRefusals.has(counter)) {
            this.ownPublishRefusals.set(counter, error);
            done();
            return;
          }
          // mqemitter ignores a listener's error: close the publisher before aedes sends the PUBACK it holds, so it resends.
          publisher?.close();
          // the store's refusal (a full disk) is said once a minute, as the broker's own are
          if (!this.storageFailures.closedBy(message.clientId ?? '', error)) {
            this.log.warn({ err: error, topic: packet.topic, clientId: message.clientId }, 'a durable subscriber refused a message; publisher disconnected');
          }
          done();
        });
        return;
      }
      // A failing handler is the subscriber's problem; it must not stall delivery to others.
      handled.catch((error) => this.log.error({ err: error, topic: packet.topic }, 'bus subscriber failed'));
      done();
    };
    await new Promise<void>((resolve) => broker.subscribe(filter, deliver, resolve));
    return () => new Promise<void>((resolve) => broker.unsubscribe(filter, deliver, resolve));
  }

  thingMayPublish(thing: string, topic: string): boolean {
    const registered = this.things.get(thing);
    if (!registered) return false;
    return mayPublish(bindPolicy(registered.policy ?? this.defaultPolicy, thing, thing), topic);
  }

  /**
   * Closes the connections admitted as `thing` (only those that logged in `via` one way, when
   * given). A login is checked once, at CONNECT: without this a thing removed, given another
   * password or another policy would keep what it was granted for as long as its connection lasts.
   * The device reconnects under what the thing is now; a persistent session's stored filters are
   * checked again then. Its will is not published: it was granted under what the thing no longer is.
   */
  disconnectThing(thing: string, via?: Session['via']): number {
    const clients = this.sessions.ofThing(thing, via);
    for (const client of clients) {
      // nothing it was granted outlives the change: not even its will, which aedes publishes as it closes
      this.sessions.get(client)!.policy = { publish: [], subscribe: [] };
      client.close();
    }
    if (clients.length > 0) this.log.info({ thing, clients: clients.map((client) => client.id) }, 'disconnected the connections of a changed thing');
    return clients.length;
  }

  /** The client ids of the persistent sessions stored for `thing` (asked while it is registered). */
  storedSessionsOf(thing: string): string[] {
    const policy = this.things.get(thing)?.policy ?? this.defaultPolicy;
    return sessionsOfThing(thing, policy.clientIds, this.persistence.storedSessionIds(), this.things);
  }

  /**
   * Ends these persistent sessions, whose clients are not connected (disconnectThing closed them):
   * a removed thing's queued messages and filters would otherwise wait for whoever next takes its
   * client ids — a new thing of the same name, or an anonymous client.
   */
  async endSessions(clientIds: string[]): Promise<void> {
    await Promise.all(clientIds.map((clientId) => this.persistence.dropSession(clientId)));
    if (clientIds.length > 0) this.log.info({ clientIds }, 'ended the persistent sessions of a removed thing');
  }

  private running(): Aedes {
    if (!this.broker) throw new Error('the broker is not running');
    return this.broker;
  }

  get defaultPolicy() {
    return this.context.config.mqtt.defaultPolicy;
  }

  health(): ServiceHealth {
    return this.broker && !this.broker.closed ? { ok: true } : { ok: false, detail: 'broker not running' };
  }

  listeners(): Listener[] {
    return this.listenersSet.listeners();
  }

  reloadFiles(): string[] {
    return this.listenersSet.reloadTls() ? ['mqtts'] : [];
  }

  status(): Record<string, unknown> {
    return {
      connectedClients: this.listenersSet.connections(),
      queued: this.persistence.queuedTotals(),
      dropped: { ...this.metrics.dropped },
      refused: { ...this.metrics.refused },
    };
  }

  clients(): ConnectedClient[] {
    const clients = (this.broker as unknown as { clients: Record<string, Client & { subscriptions: Record<string, unknown> }> } | undefined)?.clients ?? {};
    return Object.values(clients).map((client) => {
      const session = this.sessions.get(client);
      return {
        id: client.id,
        thing: session?.thing ?? null,
        via: session?.via ?? 'unknown',
        address: session?.address ?? 'unknown',
        since: session?.since ?? 0,
        clean: client.clean,
        subscriptions: Object.keys(client.subscriptions),
        queued: client.clean ? 0 : this.persistence.queuedMessages(client.id),
      };
    });
  }

  private accept(stream: import('node:stream').Duplex, request?: import('node:http').IncomingMessage, messages?: WebSocketMessages): void {
    const broker = this.broker;
    if (!broker) {
      stream.destroy();
      return;
    }
    const client = broker.handle(stream, request);
    // on the socket's close rather than aedes' clientDisconnect, which a client taken over may not get
    stream.once('close', () => {
      this.sessions.closed(client);
      this.expiry.left(client, this.sessions.get(client) !== undefined);
    });
    limitPacketSize(client, stream, {
      maxPacketSize: this.context.config.mqtt.maxPacketSize,
      connectBudget: this.connectBudget,
      packetBudget: this.packetBudget,
      onRefused: (reason) => { this.metrics.refused[reason]++; },
      framed: request && messages ? { socket: request.socket, messages } : undefined,
    });
    // first: the checks wrapped around it see each packet as it arrives, not when it is handed on
    keepPacketOrder(client);
    refuseMalformedPackets(client);
    rememberRepeatedFilters(client);
    deliverAtGrantedQos(client);
    deliverOvertakenMessages(client, broker.id);
    keepRetainedInFlight(client, this.persistence, (error) => this.log.error({ err: error, clientId: client.id }, 'could not store a retained message sent to a persistent session'));
    skipIdentifiersInFlight(client, this.persistence);
    skipDeliveriesAfterClose(client);
    parsePublishesDirectly(client, this.context.config.mqtt.maxPacketSize);
    this.outgoing.manage(client);
  }
}

/** A CONNECT's arrival stops its session's expiry clock, before the login is checked. */
function expiringPreConnect(expiry: SessionExpiry, preConnect: ReturnType<typeof createPreConnect>): ReturnType<typeof createPreConnect> {
  return (client, packet, callback) => {
    if (packet.clientId) expiry.arrived(client, packet.clientId);
    preConnect(client, packet, callback);
  };
}
