import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { WebSocketServer, createWebSocketStream } from 'ws';

/** One connection to a ScriptedCloud. */
export interface CloudConnection {
  /** The TCP socket, or the WebSocket's stream. */
  readonly socket: Duplex;
  send(packet: mqttPacket.Packet): void;
  /** An MQTT 5 DISCONNECT with `reasonCode`, and the end of the connection. */
  disconnect(reasonCode: number): void;
}

/**
 * A cloud broker whose answers a test writes, on a free loopback port: for what Mosquitto does not
 * do (MQTT 5 limits announced in CONNACK and enforced, reason codes, AWS IoT Core's quotas).
 * `connected` makes the handler of one connection's packets.
 */
export abstract class ScriptedCloud {
  private readonly sockets = new Set<Duplex>();
  private server: Server | undefined;
  private port = 0;
  private scheme = 'mqtt';

  constructor(private readonly protocolVersion: 4 | 5) {}

  protected abstract connected(connection: CloudConnection): (packet: mqttPacket.Packet) => void;

  /** `ws`: MQTT over WebSocket (ws://) instead of TCP. */
  async listen(transport: 'tcp' | 'ws' = 'tcp'): Promise<this> {
    let server: Server;
    if (transport === 'ws') {
      server = createHttpServer();
      new WebSocketServer({ server }).on('connection', (ws) => this.accept(createWebSocketStream(ws)));
      this.scheme = 'ws';
    } else {
      server = createServer((socket) => this.accept(socket));
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    return this;
  }

  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private accept(socket: Duplex): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const options = { protocolVersion: this.protocolVersion };
    const connection: CloudConnection = {
      socket,
      send: (packet) => { if (!socket.destroyed) socket.write(mqttPacket.generate(packet, options)); },
      disconnect: (reasonCode) => {
        connection.send({ cmd: 'disconnect', reasonCode });
        socket.end();
      },
    };
    const parser = mqttPacket.parser(options);
    parser.on('packet', this.connected(connection));
    socket.on('data', (chunk) => parser.parse(chunk));
  }
}
