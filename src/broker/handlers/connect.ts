import type { TLSSocket } from 'node:tls';
import type { AuthenticateError, Client, ConnectPacket } from 'aedes';
import type { Config } from '../../config/schema.js';
import { bindPolicy, clientIdAllowed, mayPublish } from '../policy.js';
import { isDaemonOnlyTopic, isValidTopicName, refusesRetained } from '../topic.js';
import { remoteAddress, type Session, type Sessions } from '../sessions.js';
import { sessionsOfThing } from '../thing-sessions.js';
import { THING_NAME, type Thing, type ThingRegistry } from '../things/registry.js';
import { VerifierBusyError } from '../things/password.js';
import type { BrokerMetrics, RefusalReason } from '../metrics.js';

// CONNACK return codes, MQTT 3.1.1 table 3.1.
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

interface ConnectDeps {
  mqtt: Config['mqtt'];
  things: ThingRegistry;
  sessions: Sessions;
  metrics: BrokerMetrics;
  store: { storedSessionIds(): Set<string> };
}

type Refusal = AuthenticateError & { label?: RefusalReason };

function refuse(returnCode: number, reason: string, label?: RefusalReason): Refusal {
  return Object.assign(new Error(reason), { returnCode, label }) as Refusal;
}

/** aedes replaces an empty client id before authenticate runs, so note it here. */
export function createPreConnect({ sessions }: ConnectDeps) {
  return (client: Client, packet: ConnectPacket, callback: (error: Error | null, success: boolean) => void) => {
    // a protocol violation, which closes the connection without a CONNACK (Mosquitto does the same)
    if (packet.will && !isValidTopicName(packet.will.topic)) return callback(new Error(`will topic "${packet.will.topic}" is not a topic name`), false);
    if (packet.clientId === '' && packet.clean === false) sessions.emptyPersistentIds.add(client);
    callback(null, true);
  };
}

/**
 * Who is connecting, as a pipeline: the client id rule, then a client
 * certificate, then username/password, then anonymous access — the first that
 * applies decides; then the thing's policy must allow the client id.
 */
export function createAuthenticate(deps: ConnectDeps) {
  return (client: Client, username: string | undefined, password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void) => {
    authenticate(deps, client, username, password).then((session) => {
      deps.sessions.set(client, session);
      done(null, true);
    }, (error: Refusal) => {
      deps.metrics.refused[error.label ?? reasonLabel(error.returnCode)]++;
      done(error, false);
    });
  };
}

async function authenticate(deps: ConnectDeps, client: Client, username: string | undefined, password: Buffer | undefined): Promise<Session> {
  rejectEmptyPersistentClientId(deps, client);
  rejectLongClientId(deps, client);
  const identity = identifyByCertificate(deps, client)
    ?? await identifyByPassword(deps, username, password)
    ?? identifyAnonymous(deps);
  const session = bindSession(deps, client, identity);
  refuseUnauthorizedWill(client, session);
  refuseSessionBeyondThingLimit(deps, client, session);
  refuseAnonymousSessionBeyondLimit(deps, client, session);
  return session;
}

/**
 * A thing keeps at most mqtt.maxPersistentSessionsPerThing persistent sessions, stored or open:
 * each holds filters against the broker's shared maxSubscriptions and queues messages on disk
 * until its client comes back, so a device minting client ids (`<thing>-<random>`, clean session
 * 0) would take them from every other thing. CONNACK 2, "identifier rejected" — the client id is
 * not allowed by the server (MQTT 3.1.1 table 3.1) — rather than 5, as the thing may connect, and
 * rather than 3, which says to retry: the thing gets in with a client id of one of its sessions, or
 * with clean session 1, which also ends the session of that id (MQTT-3.1.2-6).
 */
function refuseSessionBeyondThingLimit({ mqtt, things, sessions, store }: ConnectDeps, client: Client, session: Session): void {
  if (client.clean || session.thing === null) return;
  const thing = session.thing;
  const policy = things.get(thing)?.policy ?? mqtt.defaultPolicy;
  const ofThing = new Set<string>();
  for (const open of sessions.ofThing(thing)) if (!open.clean) ofThing.add(open.id);
  for (const id of sessionsOfThing(thing, policy.clientIds, store.storedSessionIds(), things)) ofThing.add(id);
  ofThing.delete(client.id);
  if (ofThing.size >= mqtt.maxPersistentSessionsPerThing) {
    throw refuse(IDENTIFIER_REJECTED, `thing ${thing} has ${ofThing.size} persistent sessions, the most mqtt.maxPersistentSessionsPerThing allows`, 'persistent_session_limit');
  }
}

/**
 * Anonymous clients keep at most mqtt.maxAnonymousPersistentSessions persistent sessions, stored or
 * open, as a thing keeps maxPersistentSessionsPerThing: otherwise each new client id would store
 * one for as long as persistentSessionExpiry. Which stored session was opened anonymously is not
 * kept, so those whose client id no registered thing owns count (sessions of things whose policy
 * allows other ids too): the bound only ever holds back anonymous clients. CONNACK 2 as for a thing.
 */
function refuseAnonymousSessionBeyondLimit({ mqtt, things, sessions, store }: ConnectDeps, client: Client, session: Session): void {
  if (client.clean || session.thing !== null) return;
  const anonymous = new Set<string>();
  for (const open of sessions.anonymous()) if (!open.clean) anonymous.add(open.id);
  for (const id of store.storedSessionIds()) if (things.clientIdOwner(id) === undefined) anonymous.add(id);
  anonymous.delete(client.id);
  if (anonymous.size >= mqtt.maxAnonymousPersistentSessions) {
    throw refuse(IDENTIFIER_REJECTED, `anonymous clients have ${anonymous.size} persistent sessions, the most mqtt.maxAnonymousPersistentSessions allows`, 'persistent_session_limit');
  }
}

/**
 * A will the client could not publish itself is refused with the connection (CONNACK 0x05), as AWS
 * IoT and Mosquitto do: dropping it only when it is published would not do, as a will left by a
 * daemon that was killed is published at the next start, with no client to check it against. A
 * retained will on a reserved topic is one (refusesRetained).
 */
function refuseUnauthorizedWill(client: Client, session: Session): void {
  const will = (client as unknown as { _will?: { topic: string; retain?: boolean } })._will;
  if (will && (isDaemonOnlyTopic(will.topic) || (will.retain === true && refusesRetained(will.topic)) || !mayPublish(session.policy, will.topic))) {
    throw refuse(NOT_AUTHORIZED, `will topic "${will.topic}" not allowed by the policy`);
  }
}

// MQTT-3.1.3-8: a zero-length client id needs clean session 1, else CONNACK 0x02.
function rejectEmptyPersistentClientId({ sessions }: ConnectDeps, client: Client): void {
  if (sessions.emptyPersistentIds.has(client)) throw refuse(IDENTIFIER_REJECTED, 'zero-length client id requires clean session');
}

/**
 * MQTT-3.1.3-5 lets a server refuse client ids longer than 23 bytes; MQTT 3.1.1 allows 64 KiB, each
 * kept as long as its connection (and its persistent session, on disk): maxConnections of them
 * would be 64 MiB. AWS IoT allows 128 bytes. CONNACK 2, identifier rejected (MQTT-3.1.3-9).
 */
function rejectLongClientId({ mqtt }: ConnectDeps, client: Client): void {
  if (Buffer.byteLength(client.id) > mqtt.maxClientIdBytes) throw refuse(IDENTIFIER_REJECTED, `client id longer than mqtt.maxClientIdBytes (${mqtt.maxClientIdBytes})`);
}

interface Identity {
  thing: Thing | null;
  via: Session['via'];
}

/**
 * A client certificate names the thing by its registered fingerprint, or by its
 * CN when the configured CA (`mqtt.tls.ca`) signed it. A presented certificate
 * that does neither is refused rather than falling through to weaker checks.
 */
function identifyByCertificate({ things, mqtt }: ConnectDeps, client: Client): Identity | undefined {
  const socket = client.conn as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const certificate = socket.getPeerCertificate();
  if (!certificate || !certificate.fingerprint256) {
    if (mqtt.tls.requireClientCert) throw refuse(NOT_AUTHORIZED, 'client certificate required');
    return undefined;
  }
  const registered = things.byFingerprint(certificate.fingerprint256);
  if (registered) return { thing: registered, via: 'certificate' };
  const commonName = certificate.subject?.CN;
  const name = Array.isArray(commonName) ? commonName[0] : commonName;
  // Only the configured CA vouches for a CN. Without one Node verifies the chain against the public
  // CAs it trusts by default, which issue client certificates to anyone: a certificate is then
  // known by its registered fingerprint or not at all.
  if (mqtt.tls.ca !== undefined && socket.authorized && name) {
    // a name no thing can have (`+`, `a/b`): as a thing it would be substituted into topic policies
    if (!THING_NAME.test(name)) throw refuse(NOT_AUTHORIZED, `client certificate's CN ${JSON.stringify(name)} is not a thing name (1-128 of [a-zA-Z0-9:_-])`);
    return { thing: things.get(name) ?? { name, hasPassword: false, certFingerprint: null, policy: null, createdAt: 0 }, via: 'certificate' };
  }
  throw refuse(NOT_AUTHORIZED, `client certificate not trusted: ${socket.authorizationError ?? 'unknown fingerprint'}`);
}

async function identifyByPassword({ things }: ConnectDeps, username: string | undefined, password: Buffer | undefined): Promise<Identity | undefined> {
  if (username === undefined && password === undefined) return undefined;
  let thing;
  try {
    thing = username !== undefined && password !== undefined
      ? await things.checkPassword(withoutSdkMetadata(username), password.toString('utf8'))
      : undefined;
  } catch (error) {
    if (error instanceof VerifierBusyError) throw refuse(SERVER_UNAVAILABLE, `password checks busy: ${error.message}`);
    throw error;
  }
  if (!thing) throw refuse(BAD_USERNAME_OR_PASSWORD, 'bad user name or password');
  return { thing, via: 'password' };
}

/**
 * AWS IoT Device SDKs append `?SDK=…&Version=…&Metadata=…` to the username;
 * AWS IoT Core ignores that query string, and so do we: the thing name is what
 * precedes it. Thing names cannot contain '?'.
 */
function withoutSdkMetadata(username: string): string {
  const query = username.indexOf('?');
  return query === -1 ? username : username.slice(0, query);
}

function identifyAnonymous({ mqtt }: ConnectDeps): Identity {
  if (!mqtt.allowAnonymous) throw refuse(NOT_AUTHORIZED, 'anonymous access is disabled');
  return { thing: null, via: 'anonymous' };
}

function bindSession({ mqtt, things }: ConnectDeps, client: Client, identity: Identity): Session {
  const base = { address: remoteAddress(client), since: Date.now(), via: identity.via, filters: new Set<string>() };
  // MQTT lets a CONNECT take over the open connection and the persistent session of its client id:
  // another thing's (or an anonymous client) would cut the owner off and drop or take its session
  const owner = things.clientIdOwner(client.id);
  if (owner !== undefined && owner !== identity.thing?.name) {
    throw refuse(NOT_AUTHORIZED, `client id "${client.id}" belongs to thing ${owner}`);
  }
  if (!identity.thing) {
    return { ...base, thing: null, policy: bindPolicy(mqtt.anonymousPolicy, null, client.id) };
  }
  const policy = identity.thing.policy ?? mqtt.defaultPolicy;
  if (!clientIdAllowed(policy.clientIds, identity.thing.name, client.id)) {
    throw refuse(NOT_AUTHORIZED, `client id "${client.id}" not allowed for thing ${identity.thing.name}`);
  }
  return { ...base, thing: identity.thing.name, policy: bindPolicy(policy, identity.thing.name, client.id) };
}

function reasonLabel(returnCode: number | undefined): RefusalReason {
  switch (returnCode) {
    case IDENTIFIER_REJECTED: return 'identifier_rejected';
    case SERVER_UNAVAILABLE: return 'server_unavailable';
    case BAD_USERNAME_OR_PASSWORD: return 'bad_credentials';
    default: return 'not_authorized';
  }
}
