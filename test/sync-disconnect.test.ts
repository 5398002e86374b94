import { afterEach, describe, expect, it } from 'vitest';
import type mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { ScriptedCloud, type CloudConnection } from './helpers/scripted-cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

/**
 * An MQTT 5 cloud that accepts every connection and ends it with a server DISCONNECT of the given
 * reason code: on the first PUBLISH, which it never acknowledges (the publish is in flight when the
 * cloud goes, every time), or right after the CONNACK (an overloaded cloud, a session taken over).
 */
class DisconnectingCloud extends ScriptedCloud {
  connections = 0;

  constructor(private readonly reasonCode: number, private readonly after: 'publish' | 'connack' = 'publish') {
    super(5);
  }

  protected connected(connection: CloudConnection) {
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        this.connections++;
        connection.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0 });
        if (this.after === 'connack') connection.disconnect(this.reasonCode);
      } else if (packet.cmd === 'publish') {
        connection.disconnect(this.reasonCode);
      }
    };
  }
}

describe('a cloud that ends the connection with an MQTT 5 DISCONNECT reason code', () => {
  let cloud: DisconnectingCloud | undefined;
  let daemon: TestDaemon | undefined;
  let device: MqttClient | undefined;

  afterEach(async () => {
    device?.end(true);
    await daemon?.cleanup();
    await cloud?.stop();
  });

  const start = async (reasonCode: number) => {
    cloud = await new DisconnectingCloud(reasonCode).listen();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-dc', protocolVersion: 5, reconnectMinMs: 50, reconnectMaxMs: 100 } },
        sync: { maxAttempts: 1, outbound: [{ name: 'telemetry', from: 'sensors/#' }] },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
    await device.publishAsync('sensors/a', '1', { qos: 1 });
  };

  // 0x8B server shutting down (a broker's restart or rolling upgrade), 0x8E session taken over: nothing the message did.
  for (const reasonCode of [0x8b, 0x8e]) {
    it(`blames no message for reason 0x${reasonCode.toString(16)}: it stays in the outbox and goes again`, async () => {
      await start(reasonCode);
      // (a dead-lettered message is not sent again: then the connection stays up)
      const figures = await eventually(async () => {
        const current = await status(daemon!);
        return (cloud!.connections >= 4 || current.deadLetters > 0) && current;
      }, 10_000);
      expect(figures.deadLetters).toBe(0);
      expect(figures.outbox.items).toBe(1);
    });
  }

  it('still blames the message in flight for a refusal such as 0x87 not authorized', async () => {
    await start(0x87);
    const figures = await eventually(async () => {
      const current = await status(daemon!);
      return current.deadLetters === 1 && current;
    }, 10_000);
    expect(figures.outbox.items).toBe(0);
    const letters = JSON.parse((await outpost(daemon!.socket, ['sync', 'dlq', 'ls', '--json'])).stdout);
    expect(JSON.stringify(letters)).toMatch(/ConnectionClosed/);
  });
});

/**
 * An MQTT 5 cloud that ends its first connection with DISCONNECT 0x8B (server shutting down), its
 * second by closing the socket without a word, and keeps the ones after (a third short connection
 * in a row would be said to be a clone's doing instead).
 */
class HangingUpCloud extends ScriptedCloud {
  connections = 0;

  constructor() {
    super(5);
  }

  protected connected(connection: CloudConnection) {
    const nth = ++this.connections;
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'pingreq') connection.send({ cmd: 'pingresp' });
      if (packet.cmd !== 'connect') return;
      connection.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0 });
      if (nth === 1) connection.disconnect(0x8b);
      else if (nth === 2) setTimeout(() => connection.socket.end(), 200);
    };
  }
}

describe('the reason given for a cloud link that went down', () => {
  let cloud: HangingUpCloud | undefined;
  let daemon: TestDaemon | undefined;

  afterEach(async () => {
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('is the last connection\'s own: a cloud that hangs up without an error is said to have, not with the error of a connection before', async () => {
    cloud = await new HangingUpCloud().listen();
    daemon = await TestDaemon.start({
      config: { cloud: { mqtt: { url: cloud.url, clientId: 'gw-hangup', protocolVersion: 5, reconnectMinMs: 50, reconnectMaxMs: 100 } } },
    });
    // the last error stays said once the link is up again (the third connection)
    const said = await eventually(async () => {
      const current = await status(daemon!);
      return cloud!.connections >= 3 && current.online && current.lastError;
    }, 10_000);
    expect(said).toBe('the cloud broker closed the connection');
  });
});

describe('reconnecting to a cloud that ends each connection right after accepting it', () => {
  let cloud: DisconnectingCloud | undefined;
  let daemon: TestDaemon | undefined;

  afterEach(async () => {
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('keeps backing off: a CONNACK alone is no success', async () => {
    cloud = await new DisconnectingCloud(0x89, 'connack').listen();
    daemon = await TestDaemon.start({
      config: { cloud: { mqtt: { url: cloud.url, clientId: 'gw-busy', protocolVersion: 5, reconnectMinMs: 100, reconnectMaxMs: 1600 } } },
    });
    await eventually(() => cloud!.connections >= 1, 5000);
    const first = cloud.connections;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Backing off, 3 s hold about 5 attempts (waits of 100, ≤200, ≤400, ≤800, ≤1600 ms); at the
    // minimum wait after each CONNACK they held about 25.
    expect(cloud.connections - first).toBeLessThan(12);
  });
});

/**
 * An MQTT 3.1.1 cloud (no DISCONNECT from the server, no negative PUBACK: it can only close the
 * socket). `restarts`: its first connections are each closed 300 ms after the CONNACK, whatever is in
 * flight, with nothing acknowledged (a broker restarting); `refuses`: it closes the connection on a
 * PUBLISH whose topic contains it (as AWS IoT Core on one it does not authorise), and acknowledges
 * the others.
 */
class ClosingCloud extends ScriptedCloud {
  connections = 0;
  readonly acknowledged: string[] = [];

  constructor(private readonly behaviour: { restarts?: number; refuses?: string }) {
    super(4);
  }

  protected connected(connection: CloudConnection) {
    const restarting = ++this.connections <= (this.behaviour.restarts ?? 0);
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        connection.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
        if (restarting) setTimeout(() => connection.socket.end(), 300);
      } else if (packet.cmd === 'pingreq') {
        connection.send({ cmd: 'pingresp' });
      } else if (packet.cmd === 'publish' && !restarting) {
        if (this.behaviour.refuses && packet.topic.includes(this.behaviour.refuses)) {
          connection.socket.end();
          return;
        }
        this.acknowledged.push(packet.topic);
        connection.send({ cmd: 'puback', messageId: packet.messageId });
      }
    };
  }
}

/** An MQTT 3.1.1 cloud that closes every connection `holdMs` after accepting it; it notes when each closed and the next came. */
class CyclingCloud extends ScriptedCloud {
  readonly waits: number[] = [];
  private closedAt: number | undefined;

  constructor(private readonly holdMs: number) {
    super(4);
  }

  protected connected(connection: CloudConnection) {
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd !== 'connect') return;
      if (this.closedAt !== undefined) this.waits.push(performance.now() - this.closedAt);
      connection.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
      setTimeout(() => {
        this.closedAt = performance.now();
        connection.socket.end();
      }, this.holdMs);
    };
  }
}

describe('reconnecting after a connection that held', () => {
  let cloud: CyclingCloud | undefined;
  let daemon: TestDaemon | undefined;

  afterEach(async () => {
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('spreads even the first attempt over [min, 2·min] (a fleet that lost its broker at once does not come back at once)', async () => {
    // each connection holds longer than reconnectMaxMs: a success, so every wait is a first one
    cloud = await new CyclingCloud(900).listen();
    daemon = await TestDaemon.start({
      config: { cloud: { mqtt: { url: cloud.url, clientId: 'gw-cycle', reconnectMinMs: 200, reconnectMaxMs: 800 } } },
    });
    await eventually(() => cloud!.waits.length >= 14, 60_000);
    const waits = cloud.waits.slice(0, 14);
    // never sooner than min; at exactly min each time they would all fall in [200, 280) (2.7e-6 by chance)
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(195);
    expect(waits.some((wait) => wait >= 280)).toBe(true);
  }, 70_000);
});

describe('an MQTT 3.1.1 cloud that closes the connection with a message in flight', () => {
  let cloud: ClosingCloud | undefined;
  let daemon: TestDaemon | undefined;
  let device: MqttClient | undefined;

  afterEach(async () => {
    device?.end(true);
    await daemon?.cleanup();
    await cloud?.stop();
  });

  const start = async (behaviour: ConstructorParameters<typeof ClosingCloud>[0], maxAttempts: number) => {
    cloud = await new ClosingCloud(behaviour).listen();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-311', reconnectMinMs: 50, reconnectMaxMs: 100 } },
        sync: { maxAttempts, outbound: [{ name: 'telemetry', from: 'sensors/#', id: 'none' }] },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
  };

  it('dead-letters no message for a restart of the cloud, however often it is in flight then', async () => {
    await start({ restarts: 8 }, 1);
    await device!.publishAsync('sensors/a', '1', { qos: 1 });
    const figures = await eventually(async () => {
      const current = await status(daemon!);
      return (cloud!.acknowledged.length > 0 || current.deadLetters > 0) && current;
    }, 30_000);
    expect(figures.deadLetters).toBe(0);
    expect(cloud!.acknowledged).toEqual(['sensors/a']);
    expect(cloud!.connections).toBeGreaterThan(8);
  });

  it('dead-letters a message after which the cloud closes the connection every time, and delivers the others', async () => {
    await start({ refuses: 'forbidden' }, 2);
    await outpost(daemon!.socket, ['sync', 'pause']);
    for (const topic of ['sensors/ok1', 'sensors/forbidden', 'sensors/ok2']) await device!.publishAsync(topic, 'x', { qos: 1 });
    await outpost(daemon!.socket, ['sync', 'resume']);
    const figures = await eventually(async () => {
      const current = await status(daemon!);
      return current.deadLetters === 1 && current.outbox.items === 0 && current;
    }, 30_000);
    expect(figures.deadLetters).toBe(1);
    expect(cloud!.acknowledged).toContain('sensors/ok2');
    const letters = JSON.parse((await outpost(daemon!.socket, ['sync', 'dlq', 'ls', '--json'])).stdout);
    expect(JSON.stringify(letters)).toMatch(/ConnectionClosed/);
    expect(JSON.stringify(letters)).toMatch(/sensors\/forbidden/);
  });
});

/**
 * An MQTT 3.1.1 cloud that never acknowledges a PUBLISH whose topic contains "silent" and keeps the
 * connection; its first connection that gets a PUBLISH it closes 300 ms later, acknowledging nothing (a restart).
 */
class SilentCloud extends ScriptedCloud {
  readonly acknowledged: string[] = [];
  /** PUBLISHes after the restart. */
  readonly received: string[] = [];
  private restarted = false;

  constructor() {
    super(4);
  }

  protected connected(connection: CloudConnection) {
    let restarting = false;
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        connection.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
      } else if (packet.cmd === 'pingreq') {
        connection.send({ cmd: 'pingresp' });
      } else if (packet.cmd === 'publish') {
        if (!this.restarted) {
          this.restarted = restarting = true;
          setTimeout(() => connection.socket.end(), 300);
        }
        if (restarting) return;
        this.received.push(packet.topic);
        if (packet.topic.includes('silent')) return;
        this.acknowledged.push(packet.topic);
        connection.send({ cmd: 'puback', messageId: packet.messageId });
      }
    };
  }
}

describe('a message the cloud neither acknowledges nor closes the connection for', () => {
  let cloud: SilentCloud | undefined;
  let daemon: TestDaemon | undefined;
  let device: MqttClient | undefined;

  afterEach(async () => {
    device?.end(true);
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('does not hold back the others once it went alone after a restart of the cloud', async () => {
    cloud = await new SilentCloud().listen();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-silent', reconnectMinMs: 50, reconnectMaxMs: 100 } },
        sync: { outbound: [{ name: 'telemetry', from: 'sensors/#', id: 'none' }] },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
    await eventually(async () => (await status(daemon!)).online, 10_000);
    await outpost(daemon.socket, ['sync', 'pause']);
    for (const topic of ['sensors/silent', 'sensors/ok']) await device.publishAsync(topic, 'x', { qos: 1 });
    await outpost(daemon.socket, ['sync', 'resume']);
    // held back behind the suspect meanwhile, and the status says why
    const held = await eventually(async () => (await outpost(daemon!.socket, ['sync', 'status'])).stdout.match(/item (\d+) goes alone first/), 10_000);
    expect((await status(daemon)).suspect).toBe(Number(held[1]));
    await eventually(() => cloud!.acknowledged.includes('sensors/ok'), 30_000);
    expect((await status(daemon)).suspect).toBeNull();
    expect((await status(daemon)).deadLetters).toBe(0);
    // sent once on the connection: still in flight when the others went
    expect(cloud.received.filter((topic) => topic === 'sensors/silent')).toHaveLength(1);
  }, 40_000);
});
