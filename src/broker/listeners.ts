import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { http } from '../node-http.js';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Listener } from '../service.js';
import { CONNECTIONS_CHECKING_INTERVAL_MS } from '../http/server.js';
import { originAllowed } from './ws-origin.js';
import { listenOn } from '../listen.js';
import { readTlsFiles, type TlsPaths } from '../tls-files.js';

/** `messages`: over WebSocket, the WebSocket, whose 'message' says a message arrived whole. */
export type ConnectionHandler = (stream: Duplex, socket: Socket, request?: IncomingMessage, messages?: WebSocketMessages) => void;

export interface WebSocketMessages { on(event: 'message', listener: () => void): unknown }

interface Bound {
  listener: Listener;
  server: TcpServer | HttpServer;
  close?: () => void;
}

/**
 * The broker's sockets — TCP, TLS and WebSocket — with one connection limit
 * across all of them and byte counters for metrics.
 */
export class MqttListeners {
  private readonly bound: Bound[] = [];
  private readonly live = new Set<Socket>();
  private closedBytesIn = 0;
  private closedBytesOut = 0;
  /** Gives the TLS port its files read again, when mqtt.tls is enabled. */
  private reloadTlsFiles: (() => void) | undefined;

  constructor(
    private readonly mqtt: Config['mqtt'],
    private readonly onConnection: ConnectionHandler,
    private readonly onRefused: (reason: 'max_connections' | 'origin_not_allowed') => void,
  ) {}

  async start(): Promise<void> {
    const { mqtt } = this;
    await this.bind('mqtt', 'mqtt', 'mqtt', mqtt.host, mqtt.port, createTcpServer((socket) => this.accept(socket, socket)));
    if (mqtt.tls.enabled) {
      // Loaded only when enabled, like ws below: every module stays resident on a small board.
      const tls = await import('node:tls');
      const files = () => readTlsFiles('mqtt.tls', tlsPaths(mqtt.tls), tls);
      const server = tls.createServer({
        ...files(),
        // Certificates are checked in authenticate, so a client without one can
        // still log in with a password unless requireClientCert says otherwise.
        requestCert: Boolean(mqtt.tls.ca) || mqtt.tls.requireClientCert,
        rejectUnauthorized: false,
        handshakeTimeout: mqtt.connectTimeout * 1000,
      }, (socket) => {
        // As Mosquitto with a crlfile: a revoked certificate ends the connection, whatever else the
        // client could log in with. A registered fingerprint does not vouch for it either.
        // (Node's types call authorizationError an Error; it is OpenSSL's code, a string)
        if ((socket.authorizationError as unknown) === 'CERT_REVOKED') return socket.destroy();
        this.accept(socket, socket);
      });
      server.on('tlsClientError', (_error, socket) => socket.destroy());
      // A socket becomes one of `live` once its handshake is done: until then it is bounded here, or
      // a client could hold any number of them in their handshake for connectTimeout each.
      server.maxConnections = mqtt.maxConnections;
      server.on('drop', () => this.onRefused('max_connections'));
      await this.bind('mqtts', 'mqtts', 'mqtt.tls', mqtt.tls.host, mqtt.tls.port, server);
      this.reloadTlsFiles = () => server.setSecureContext(files());
    }
    if (mqtt.ws.enabled) {
      const { WebSocketServer, createWebSocketStream } = await import('ws');
      const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS });
      // Until its upgrade a socket is the HTTP server's, not yet one of `live`: bounded here too, and
      // given connectTimeout for its upgrade request as a TCP socket has for its CONNECT.
      server.maxConnections = mqtt.maxConnections;
      server.on('drop', () => this.onRefused('max_connections'));
      server.headersTimeout = mqtt.connectTimeout * 1000;
      server.requestTimeout = mqtt.connectTimeout * 1000;
      // without a 'request' listener a request that asks no upgrade would hold its socket unanswered
      server.on('request', (_req, res) => res.writeHead(426, { Connection: 'close', Upgrade: 'websocket' }).end());
      const wss = new WebSocketServer({
        server,
        maxPayload: mqtt.maxPacketSize + 8,
        verifyClient: ({ req }, answer) => {
          if (originAllowed(req, mqtt.ws.allowedOrigins)) return answer(true);
          this.onRefused('origin_not_allowed');
          answer(false, 403, 'Forbidden: this origin is not in mqtt.ws.allowedOrigins');
        },
      });
      // it re-emits its HTTP server's errors (a port taken), which `bind` reports with the setting's name
      wss.on('error', () => undefined);
      wss.on('connection', (ws, request) => {
        refuseTextFrames(ws);
        const stream = createWebSocketStream(ws);
        stream.on('error', () => ws.terminate());
        this.accept(stream, request.socket, request, ws);
      });
      await this.bind('mqtt-ws', 'ws', 'mqtt.ws', mqtt.ws.host, mqtt.ws.port, server, () => wss.close());
    }
  }

  listeners(): Listener[] {
    return this.bound.map((entry) => entry.listener);
  }

  /**
   * Reads the TLS port's certificate, key, CA and CRL files again (a renewed certificate, a new
   * CRL), for the handshakes from now on; throws, keeping those in use, when one does not load.
   * Returns whether there is a TLS port.
   */
  reloadTls(): boolean {
    this.reloadTlsFiles?.();
    return this.reloadTlsFiles !== undefined;
  }

  connections(): number {
    return this.live.size;
  }

  bytesIn(): number {
    let total = this.closedBytesIn;
    for (const socket of this.live) total += socket.bytesRead;
    return total;
  }

  bytesOut(): number {
    let total = this.closedBytesOut;
    for (const socket of this.live) total += socket.bytesWritten;
    return total;
  }

  /**
   * Stops accepting at once; resolves when every connection has closed — the
   * broker closes its clients, and `destroyConnections` ends any that linger.
   */
  stop(): Promise<void> {
    return Promise.all(this.bound.map(({ server, close }) => new Promise<void>((resolve) => {
      close?.();
      server.close(() => resolve());
    }))).then(() => undefined);
  }

  destroyConnections(): void {
    for (const socket of this.live) socket.destroy();
  }

  private accept(stream: Duplex, socket: Socket, request?: IncomingMessage, messages?: WebSocketMessages): void {
    if (this.live.size >= this.mqtt.maxConnections) {
      this.onRefused('max_connections');
      socket.destroy();
      return;
    }
    this.live.add(socket);
    // Outgoing packets are already batched into one write per event-loop turn
    // (outgoing-writes.ts); Nagle would only hold back a reply that follows its
    // PUBACK — e.g. a shadow's /accepted — until the client's delayed ACK, ~40 ms.
    socket.setNoDelay(true);
    socket.once('close', () => {
      this.live.delete(socket);
      this.closedBytesIn += socket.bytesRead;
      this.closedBytesOut += socket.bytesWritten;
    });
    // A socket error is the client's problem; aedes closes the client. Never let it reach the process.
    socket.on('error', () => undefined);
    this.onConnection(stream, socket, request, messages);
  }

  /** `key`: the configuration section whose host and port these are. */
  private async bind(name: string, protocol: string, key: string, host: string, port: number, server: TcpServer | HttpServer, close?: () => void): Promise<void> {
    await listenOn(server, { host, port }, key);
    const address = server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    this.bound.push({ listener: { name, protocol, host, port: actualPort }, server, close });
  }
}

function tlsPaths({ cert, key, ca, crl }: Config['mqtt']['tls']): TlsPaths {
  return { cert: cert!, key: key!, ca, crl };
}

/**
 * MQTT-6.0.0-1: MQTT goes in binary frames, and a receiver closes a connection that sends any other
 * data frame; a text frame's packet was taken (its bytes as UTF-8 text: a payload could change).
 * Before the stream's own listener, which would hand its bytes on.
 */
function refuseTextFrames(ws: { emit(event: string | symbol, ...args: unknown[]): boolean; close(code: number, reason: string): void }): void {
  const emit = ws.emit;
  ws.emit = function (event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message' && args[1] === false) {
      ws.close(1003, 'MQTT packets are sent in binary frames');
      return true;
    }
    return emit.call(this, event, ...args);
  };
}
