import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient } from './helpers/mqtt.js';
import { ModbusSlave, PtyPair, listDevices } from './helpers/serial.js';
import { ShadowMqttClient } from './helpers/shadow.js';

// Devices at the edges of their input and of the shadow's life, over socat pseudo-terminals.

/** The longest device name (64 characters). */
const LONG_NAME = `sensor-${'x'.repeat(57)}`;

const PROFILES: Record<string, unknown> = {
  relay: {
    framing: { type: 'lines' },
    parser: { type: 'json' },
    shadow: { minIntervalMs: 0 },
    commands: { template: 'SET ${key} ${value}\n', ack: '^OK ${key}$', error: '^ERR ${key}', timeoutMs: 4000 },
  },
  hung: {
    framing: { type: 'lines' },
    parser: { type: 'json' },
    commands: { timeoutMs: 300 },
  },
  scale: {
    framing: { type: 'fixed', length: 10 },
    parser: { type: 'regex', pattern: '^\\s*(?<weight>-?\\d+\\.\\d+)kg(?<stability>[SU])$' },
  },
  chatty: {
    framing: { type: 'lines', maxFrameBytes: 8192 },
    parser: { type: 'json' },
    shadow: { minIntervalMs: 1500 },
  },
  thermostat: {
    framing: { type: 'modbus', unitId: 3, pollIntervalMs: 200, responseTimeoutMs: 1000 },
    parser: {
      type: 'modbus', registers: [
        { name: 'setpoint', address: 20, table: 'holding', type: 'float32', writable: true },
        { name: 'mode', address: 24, table: 'holding', type: 'uint16' },
      ],
    },
    shadow: { minIntervalMs: 0 },
    commands: {},
  },
  dosing: {
    // 1200 baud: 3.5 characters of 10 bits are 29.2 ms; two reads (holding, input) per poll
    port: { baudRate: 1200 },
    framing: { type: 'modbus', unitId: 5, pollIntervalMs: 100, responseTimeoutMs: 1000 },
    parser: { type: 'modbus', registers: [{ name: 'rate', address: 0, table: 'holding' }, { name: 'flow', address: 0, table: 'input' }] },
  },
  valve: {
    // polled once: then only commands use the line
    framing: { type: 'modbus', unitId: 9, pollIntervalMs: 600_000, responseTimeoutMs: 5000 },
    parser: { type: 'modbus', registers: [{ name: 'open', address: 1, table: 'holding', type: 'uint16', writable: true }] },
    commands: {},
  },
};

describe('serial devices at the edges', () => {
  let dir: string;
  let daemon: TestDaemon;
  let client: MqttClient;
  let shadows: ShadowMqttClient;
  const pairs: Record<string, PtyPair> = {};
  let slave: ModbusSlave;
  let valve: ModbusSlave;
  let dosing: ModbusSlave;
  const replies: any[] = [];
  const readings: any[] = [];
  const weighings: any[] = [];

  const nextReply = (predicate: (body: any) => boolean) => eventually(() => {
    const index = replies.findIndex(predicate);
    return index >= 0 && replies.splice(index, 1)[0];
  }, 6000);

  async function reported(thing = 'pump-house'): Promise<any> {
    const answer = await shadows.request(`$aws/things/${thing}/shadow/get`);
    return answer.outcome === 'accepted' ? answer.body.state.reported ?? {} : {};
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-device-edges-'));
    const profilesDir = join(dir, 'profiles');
    mkdirSync(profilesDir);
    for (const [name, profile] of Object.entries(PROFILES)) writeFileSync(join(profilesDir, `${name}.yaml`), yaml.dump(profile));
    for (const name of [...Object.keys(PROFILES), 'long']) pairs[name] = await PtyPair.create(dir, name);
    slave = new ModbusSlave(pairs.thermostat, 3);
    valve = new ModbusSlave(pairs.valve, 9);
    dosing = new ModbusSlave(pairs.dosing, 5);
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } },
        devices: {
          profilesDir, retryInitialMs: 100, retryMaxMs: 400,
          instances: [
            { name: 'relay1', profile: 'relay', port: pairs.relay.dev, thing: 'pump-house' },
            { name: 'thermostat1', profile: 'thermostat', port: pairs.thermostat.dev, thing: 'boiler' },
            { name: 'scale1', profile: 'scale', port: pairs.scale.dev },
            { name: 'hung1', profile: 'hung', port: pairs.hung.dev },
            { name: 'valve1', profile: 'valve', port: pairs.valve.dev },
            { name: 'dosing1', profile: 'dosing', port: pairs.dosing.dev },
            { name: 'absent1', profile: 'relay', port: join(dir, 'never-plugged-in') },
            { name: 'chatty1', profile: 'chatty', port: pairs.chatty.dev, thing: 'chatter' },
            { name: LONG_NAME, profile: 'relay', port: pairs.long.dev, thing: 'long-named' },
          ],
        },
      },
    });
    client = await connectClient(daemon.mqttUrl, { clientId: 'observer' });
    client.on('message', (topic, payload) => (topic.endsWith('/reply') ? replies : topic === 'devices/thermostat1/telemetry' ? readings : topic === 'devices/scale1/telemetry' ? weighings : []).push(JSON.parse(payload.toString())));
    await client.subscribeAsync(['devices/+/commands/reply', 'devices/+/telemetry'], { qos: 1 });
    shadows = await ShadowMqttClient.connect(daemon.mqttUrl, { clientId: 'shadow-reader' }, ['$aws/things/pump-house/shadow/+/+', '$aws/things/boiler/shadow/+/+', '$aws/things/chatter/shadow/+/+', '$aws/things/long-named/shadow/+/+']);
    await eventually(async () => {
      const devices = await listDevices(daemon.socket);
      return devices.relay1.connected && devices.thermostat1.connected && devices.scale1.connected && devices.hung1.connected && devices.valve1.connected && devices.chatty1.connected && devices[LONG_NAME].connected;
    }, 8000);
  }, 30_000);

  afterAll(async () => {
    client?.end(true);
    shadows?.end();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    for (const pair of Object.values(pairs)) await pair.unplug().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows a device missing since start as not connected in the metrics, with its counters at 0', async () => {
    const text = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(text).toMatch(/^outpost_device_connected\{device="absent1"\} 0$/m);
    expect(text).toMatch(/^outpost_device_frames_total\{device="absent1"\} 0$/m);
    expect(text).toMatch(/^outpost_device_parse_errors_total\{device="absent1"\} 0$/m);
    expect(text).toMatch(/^outpost_device_commands_total\{device="absent1",result="timeout"\} 0$/m);
    expect(text).toMatch(/^outpost_device_connected\{device="relay1"\} 1$/m);
  });

  it('reports steady values and writes desired values again after the shadow was deleted', async () => {
    await pairs.relay.send('{"door": "closed", "level": 3}\n');
    await eventually(async () => (await reported()).door === 'closed');
    expect((await shadows.request('$aws/things/pump-house/shadow/update', { state: { desired: { pump: 'on' } } })).outcome).toBe('accepted');
    await pairs.relay.receivedText(/SET pump on\n/);
    await pairs.relay.send('OK pump\n');
    expect(await nextReply((body) => body.key === 'pump')).toMatchObject({ status: 'ok', source: 'shadow' });
    await eventually(async () => (await reported()).pump === 'on');

    expect((await shadows.request('$aws/things/pump-house/shadow/delete')).outcome).toBe('accepted');
    // the same readings again: the new shadow must get them although they did not change
    await pairs.relay.send('{"door": "closed", "level": 3}\n');
    await eventually(async () => (await reported()).door === 'closed');
    expect(await reported()).toMatchObject({ door: 'closed', level: 3 });

    // the same desired value again: the device's setting is not known to the new shadow until written and acknowledged
    pairs.relay.received = Buffer.alloc(0);
    expect((await shadows.request('$aws/things/pump-house/shadow/update', { state: { desired: { pump: 'on' } } })).outcome).toBe('accepted');
    await pairs.relay.receivedText(/SET pump on\n/);
    await pairs.relay.send('OK pump\n');
    expect(await nextReply((body) => body.key === 'pump')).toMatchObject({ status: 'ok', source: 'shadow' });
    await eventually(async () => (await reported()).pump === 'on');
    const document = await shadows.request('$aws/things/pump-house/shadow/get');
    expect(document.body.state.delta).toBeUndefined();
  });

  it('refuses a text command whose key or value holds a line break, writing nothing', async () => {
    pairs.relay.received = Buffer.alloc(0);
    client.publish('devices/relay1/commands', JSON.stringify({ pump: 'off\nSET heater on', clientToken: 'inject' }), { qos: 1 });
    expect(await nextReply((body) => body.clientToken === 'inject')).toMatchObject({
      key: 'pump', status: 'error', error: 'expected a value without line breaks (CR or LF)',
    });
    client.publish('devices/relay1/commands', JSON.stringify({ 'heater on\r\nSET pump': 'off', clientToken: 'inject-key' }), { qos: 1 });
    expect(await nextReply((body) => body.clientToken === 'inject-key')).toMatchObject({
      status: 'error', error: 'expected a key without line breaks (CR or LF)',
    });
    // a command after them is written, and alone
    client.publish('devices/relay1/commands', JSON.stringify({ light: 'off', clientToken: 'plain' }), { qos: 1 });
    await pairs.relay.receivedText(/SET light off\n/);
    await pairs.relay.send('OK light\n');
    expect(await nextReply((body) => body.clientToken === 'plain')).toMatchObject({ status: 'ok' });
    expect(pairs.relay.received.toString()).toBe('SET light off\n');
  });

  it('matches the acknowledgement of a key holding the $ patterns of String.replace literally', async () => {
    for (const key of ['a$&b', "x$'", 'y$`']) {
      pairs.relay.received = Buffer.alloc(0);
      client.publish('devices/relay1/commands', JSON.stringify({ [key]: 1, clientToken: `dollar ${key}` }), { qos: 1 });
      await pairs.relay.receivedText(new RegExp(`SET ${key.replace(/[$]/g, '\\$')} 1\n`));
      await pairs.relay.send(`OK ${key}\n`);
      expect(await nextReply((body) => body.clientToken === `dollar ${key}`)).toMatchObject({ key, status: 'ok' });
    }
  });

  it('refuses a float32 register value beyond float32 range instead of writing infinity', async () => {
    client.publish('devices/thermostat1/commands', JSON.stringify({ setpoint: 1e39, clientToken: 'huge' }), { qos: 1 });
    expect(await nextReply((body) => body.clientToken === 'huge')).toMatchObject({ status: 'error', error: 'setpoint: 1e+39 is out of range for float32' });
    client.publish('devices/thermostat1/commands', JSON.stringify({ setpoint: -21.5, clientToken: 'fine' }), { qos: 1 });
    expect(await nextReply((body) => body.clientToken === 'fine')).toMatchObject({ status: 'ok' });
    // -21.5 as float32 is 0xC1AC0000: the bad value never reached the device
    expect(slave.writes).toEqual([{ address: 20, values: [0xc1ac, 0x0000] }]);
  });

  it('finds a Modbus answer behind stray bytes on the line, and still refuses one with a bad CRC', async () => {
    slave.holding.set([0x41b4, 0x0000], 20); // 22.5 as float32
    // a transceiver glitch before every answer; the second noise byte pair looks like the start of an answer (unit 3, function 03)
    for (const noise of [[0x00], [0xff, 0x03, 0x03]]) {
      slave.noiseBeforeAnswer = Buffer.from(noise);
      const errorsBefore = (await listDevices(daemon.socket)).thermostat1.parseErrors;
      readings.length = 0;
      await eventually(() => readings.length >= 2, 15_000);
      expect(readings.at(-1)).toMatchObject({ setpoint: 22.5 });
      client.publish('devices/thermostat1/commands', JSON.stringify({ setpoint: 23.5, clientToken: `noise-${noise.length}` }), { qos: 1 });
      expect(await nextReply((body) => body.clientToken === `noise-${noise.length}`)).toMatchObject({ status: 'ok' });
      slave.holding.set([0x41b4, 0x0000], 20);
      expect((await listDevices(daemon.socket)).thermostat1.parseErrors).toBe(errorsBefore);
    }
    slave.corruptNext = true;
    const errorsBefore = (await listDevices(daemon.socket)).thermostat1.parseErrors;
    await eventually(async () => (await listDevices(daemon.socket)).thermostat1.parseErrors > errorsBefore, 15_000);
    expect((await listDevices(daemon.socket)).thermostat1.lastError).toBe('Modbus CRC mismatch reading holding registers 20-24');
    slave.noiseBeforeAnswer = Buffer.alloc(0);

    // an answer of fewer registers than asked for is refused for its byte count, not waited for to the timeout
    slave.shortReadNext = true;
    await eventually(async () => (await listDevices(daemon.socket)).thermostat1.lastError === 'Modbus byte count 8, expected 10 reading holding registers 20-24', 15_000);
  }, 60_000); // readings over a pseudo-terminal: slow on a loaded machine (timed out twice at load 12)

  it('writes a desired value again when the device loses it without leaving the port', async () => {
    const setpoint = () => Buffer.from(new Uint16Array([slave.holding[21], slave.holding[20]]).buffer).readFloatLE(0);
    readings.length = 0;
    expect((await shadows.request('$aws/things/boiler/shadow/update', { state: { desired: { setpoint: 19.5 } } })).outcome).toBe('accepted');
    await eventually(() => readings.some((reading) => reading.setpoint === 19.5), 6000);
    expect(setpoint()).toBe(19.5);
    // a power cut resets the meter's registers; its RS-485 adapter stays plugged in
    slave.holding.set([0, 0], 20);
    await eventually(() => setpoint() === 19.5, 6000);
    await eventually(async () => (await reported('boiler')).setpoint === 19.5);
    expect((await shadows.request('$aws/things/boiler/shadow/get')).body.state.delta).toBeUndefined();

    // 0.1 reads back from float32 as 0.100000001490116: written once, not again on every reading
    const writesBefore = slave.writes.length;
    expect((await shadows.request('$aws/things/boiler/shadow/update', { state: { desired: { setpoint: 0.1 } } })).outcome).toBe('accepted');
    await eventually(() => slave.writes.length > writesBefore, 6000);
    readings.length = 0;
    await eventually(() => readings.length >= 5, 6000);
    expect(readings.at(-1).setpoint).toBeCloseTo(0.1, 6);
    expect(slave.writes.length).toBe(writesBefore + 1);
  });

  it('realigns fixed-length frames at the device\'s next pause after a connection made mid-record or a lost byte', async () => {
    const pause = () => new Promise((resolve) => setTimeout(resolve, 600)); // the default gapMs is 200
    await pairs.scale.send('kgS');                                 // the end of a record printed before outpostd listened
    await pause();
    await pairs.scale.send(' 12.345kgS');
    await pairs.scale.send('  7.000kgU');
    await eventually(() => weighings.some((weighing) => weighing.weight === 7), 6000);
    expect(weighings).toEqual([expect.objectContaining({ weight: 12.345, stability: 'S' }), expect.objectContaining({ weight: 7, stability: 'U' })]);

    const before = (await listDevices(daemon.socket)).scale1;
    await pairs.scale.send('  1.0kgS');                            // two bytes lost to noise
    await pause();
    await pairs.scale.send('  3.000kgS');
    await eventually(() => weighings.some((weighing) => weighing.weight === 3), 6000);
    const after = (await listDevices(daemon.socket)).scale1;
    expect(after.parseErrors - before.parseErrors).toBe(1);
    expect(after.lastError).toBe('partial frame of 8 bytes dropped after 200 ms of silence');
  });

  it('reads a Modbus register map without its gaps from a device that refuses to read addresses it does not have', async () => {
    // setpoint (20-21) and mode (24) are read in one request that spans 22-23; this thermostat has no 22 or 23
    slave.holdingPresent = new Set([20, 21, 24]);
    slave.holding[24] = 4;
    readings.length = 0;
    await eventually(() => readings.some((reading) => reading.mode === 4), 6000);
    slave.holding[24] = 5;
    await eventually(() => readings.some((reading) => reading.mode === 5), 6000);
    // every poll after reads both (before, every poll failed on the refused block, for ever)
    const from = readings.length;
    await eventually(() => readings.length >= from + 3, 6000);
    expect(readings.slice(from)).toEqual(readings.slice(from).map(() => expect.objectContaining({ mode: 5, setpoint: expect.any(Number) })));
    expect((await listDevices(daemon.socket)).thermostat1.lastError ?? '').not.toMatch(/exception 2|illegal data address/i);

    // a register the device refuses alone: the error names it, the rest of the map is still read
    slave.holdingPresent = new Set([20, 21]);
    await eventually(async () => (await listDevices(daemon.socket)).thermostat1.lastError === 'Modbus exception 2 (illegal data address) reading holding register 24', 6000);
    readings.length = 0;
    await eventually(() => readings.length >= 2, 6000);
    expect(readings.at(-1)).toEqual(expect.objectContaining({ setpoint: expect.any(Number) }));
    expect(readings.at(-1)).not.toHaveProperty('mode');
    slave.holdingPresent = undefined;
  });

  it('writes a desired value the device refused once, not again on every shadow update, until it is set again', async () => {
    const writes = () => pairs.relay.received.toString().split('\n').filter((line) => line === 'SET mode turbo').length;
    pairs.relay.received = Buffer.alloc(0);
    expect((await shadows.request('$aws/things/pump-house/shadow/update', { state: { desired: { mode: 'turbo' } } })).outcome).toBe('accepted');
    await pairs.relay.receivedText(/SET mode turbo\n/);
    await pairs.relay.send('ERR mode unsupported\n');
    expect(await nextReply((body) => body.key === 'mode')).toMatchObject({ status: 'error', response: 'ERR mode unsupported', source: 'shadow' });
    // every reading updates reported, and every update announces the delta again
    for (let level = 10; level < 15; level++) {
      await pairs.relay.send(`{"level": ${level}}\n`);
      await eventually(async () => (await reported()).level === level);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(writes()).toBe(1);
    expect(replies.filter((body) => body.key === 'mode')).toEqual([]);

    // set again (a new desired timestamp, in seconds): tried again
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await shadows.request('$aws/things/pump-house/shadow/update', { state: { desired: { mode: 'turbo' } } })).outcome).toBe('accepted');
    await eventually(() => writes() === 2, 6000);
    await pairs.relay.send('OK mode\n');
    expect(await nextReply((body) => body.key === 'mode')).toMatchObject({ status: 'ok' });
    await eventually(async () => (await reported()).mode === 'turbo');
  });

  it('writes the next command once the port has taken the previous one, though the device answered that one first', async () => {
    // serialport reports a write done a turn of the event loop (or more) after its bytes left, so
    // the device's answer can come first: a meter's quick echo under load did. Here the device
    // answers a long line as soon as it has read its start, while the port is still writing the rest
    pairs.relay.received = Buffer.alloc(0);
    const answered = new Set<string>();
    pairs.relay.respond(() => {
      for (const [, key] of pairs.relay.received.toString().matchAll(/(?:^|\n)SET (\w+) /g)) {
        if (!answered.has(key)) void pairs.relay.send(`OK ${key}\n`);
        answered.add(key);
      }
    });
    try {
      client.publish('devices/relay1/commands', JSON.stringify({ long: 'x'.repeat(128 * 1024), short: 'y', clientToken: 'after-long' }), { qos: 1 });
      expect(await nextReply((body) => body.key === 'long')).toMatchObject({ status: 'ok' });
      expect(await nextReply((body) => body.key === 'short')).toEqual(expect.objectContaining({ status: 'ok', clientToken: 'after-long' }));
    } finally {
      pairs.relay.respond(() => undefined);
    }
    expect(pairs.relay.received.toString()).toBe(`SET long ${'x'.repeat(128 * 1024)}\nSET short y\n`);
  });

  it('finishes writing a command line longer than the tty takes at once though the device sends a reading meanwhile', async () => {
    // @serialport/bindings-cpp stops watching for room to write while a read waits for data: the
    // rest of the line waited for the device to send again, and this one waits for the line's end
    pairs.relay.received = Buffer.alloc(0);
    const value = 'z'.repeat(128 * 1024);
    let readingSent = false;
    pairs.relay.respond(() => {
      const text = pairs.relay.received.toString();
      if (!readingSent && text.startsWith('SET long ')) void pairs.relay.send('{"level": 42}\n');
      readingSent = true;
      if (text.endsWith('\n')) void pairs.relay.send('OK long\n');
    });
    try {
      client.publish('devices/relay1/commands', JSON.stringify({ long: value, clientToken: 'long-line' }), { qos: 1 });
      expect(await nextReply((body) => body.clientToken === 'long-line')).toEqual(expect.objectContaining({ status: 'ok' }));
    } finally {
      pairs.relay.respond(() => undefined);
    }
    expect(pairs.relay.received.toString()).toBe(`SET long ${value}\n`);
    await eventually(async () => (await reported()).level === 42);
  });

  it('refuses a command while the device does not take the previous one, rather than queueing it in memory for later', async () => {
    pairs.hung.stopReading();
    const statuses: Array<{ status: string; error?: string }> = [];
    // 64 KiB values: a few fill the ptys' and socat's buffers
    for (let index = 0; index < 12; index++) {
      client.publish('devices/hung1/commands', JSON.stringify({ [`k${index}`]: 'x'.repeat(64 * 1024), clientToken: `stall-${index}` }), { qos: 1 });
      statuses.push(await nextReply((body) => body.clientToken === `stall-${index}`));
    }
    const refused = statuses.findIndex((reply) => reply.status === 'error');
    expect(refused).toBeGreaterThan(0);
    expect(statuses[refused].error).toBe('port not accepting data: the previous write is still pending');
    expect(statuses.slice(refused).every((reply) => reply.status === 'error')).toBe(true);

    // a command waiting for the port is not acknowledged by what the device sends meanwhile: it was never written
    const acks = setInterval(() => void pairs.hung.send('OK\n'), 20); // the profile's ack, throughout the command's 300 ms
    try {
      client.publish('devices/hung1/commands', JSON.stringify({ waiting: 1, clientToken: 'waiting' }), { qos: 1 });
      expect(await nextReply((body) => body.clientToken === 'waiting')).toEqual(expect.objectContaining({ status: 'error', error: 'port not accepting data: the previous write is still pending' }));
    } finally {
      clearInterval(acks);
    }

    // the device reads again: it gets the commands that were written, not the ones refused
    pairs.hung.resumeReading();
    await eventually(() => pairs.hung.received.toString().split('\n').length - 1 === refused, 6000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(pairs.hung.received.toString().split('\n').map((line) => line.split('=')[0])).toEqual([...Array.from({ length: refused }, (_, index) => `k${index}`), '']);
  });

  it('keeps 3.5 characters of silence on a Modbus line between an answer and the next request', async () => {
    // Modbus over Serial Line §2.5.1.1: a request sent sooner runs into the answer, for the slave
    await eventually(() => dosing.gapsMs.length >= 8, 8000);
    expect(dosing.gapsMs.filter((gap) => gap < (3.5 * 10 * 1000) / 1200)).toEqual([]);
  });

  it('fails a Modbus write in flight when the port is lost, saying why, and writes again once the device is back', async () => {
    await eventually(() => valve.requests >= 1, 6000); // its one poll
    pairs.valve.stopReading(); // the request reaches the tty, no answer comes
    const sentBefore = (await listDevices(daemon.socket)).valve1.commandsSent;
    client.publish('devices/valve1/commands', JSON.stringify({ open: 1, clientToken: 'in-flight' }), { qos: 1 });
    await eventually(async () => (await listDevices(daemon.socket)).valve1.commandsSent > sentBefore, 6000);
    await pairs.valve.unplug();
    expect(await nextReply((body) => body.clientToken === 'in-flight')).toEqual(expect.objectContaining({ status: 'error', error: expect.stringMatching(/^port lost: ./) }));

    await pairs.valve.plug();
    await eventually(async () => (await listDevices(daemon.socket)).valve1.connected, 8000);
    client.publish('devices/valve1/commands', JSON.stringify({ open: 1, clientToken: 'back' }), { qos: 1 });
    expect(await nextReply((body) => body.clientToken === 'back')).toEqual(expect.objectContaining({ status: 'ok' }));
    expect(valve.holding[1]).toBe(1);
  });

  it('reports up to 256 distinct keys of a device, counting a key held back by the interval once', async () => {
    const line = (prefix: string, count: number, value: number) => `${JSON.stringify(Object.fromEntries(Array.from({ length: count }, (_, index) => [`${prefix}${index}`, value])))}\n`;
    await pairs.chatty.send(line('a', 200, 0));
    await eventually(async () => (await reported('chatter')).a199 === 0, 6000);
    // within the interval: the 200 known keys are held back with 50 new ones, 250 keys in all
    await pairs.chatty.send(line('a', 200, 1).slice(0, -2) + line('b', 50, 1).replace('{', ','));
    await eventually(async () => (await reported('chatter')).b49 === 1, 8000);
    // 6 more fit under the cap; the rest of a device's new keys are not tracked
    await pairs.chatty.send(line('c', 10, 1));
    await eventually(async () => (await reported('chatter')).c5 === 1, 8000);
    expect(Object.keys(await reported('chatter'))).toHaveLength(256);
  }, 20_000);

  it('reports to the shadow and applies desired state for a device of the longest name, its clientTokens within AWS\'s 64 bytes', async () => {
    await pairs.long.send('{"level": 7}\n');
    await eventually(async () => (await reported('long-named')).level === 7, 6000);
    const update = shadows.events.find((event) => event.topic === '$aws/things/long-named/shadow/update/accepted');
    expect(update.body.clientToken).toMatch(/^outpost-device-sensor-x{20}~[0-9a-f]{8}:[0-9a-z]+$/);
    expect(Buffer.byteLength(update.body.clientToken)).toBeLessThanOrEqual(64);
    expect((await shadows.request('$aws/things/long-named/shadow/update', { state: { desired: { valve: 'open' } } })).outcome).toBe('accepted');
    await pairs.long.receivedText(/SET valve open\n/);
    await pairs.long.send('OK valve\n');
    await eventually(async () => (await reported('long-named')).valve === 'open', 6000);
  });
});
