import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { PtyPair, listDevices, rtu } from './helpers/serial.js';
import { ModbusMaster } from '../src/devices/modbus-master.js';
import { readRequest, writeRequest } from '../src/devices/parsers/modbus.js';

// Several Modbus units on one RS-485 line: one adapter, one port, a unit id each. The test plays
// every unit on the other end of one socat pty pair.

/** One unit on the simulated line. */
interface SimulatedUnit {
  holding: Uint16Array;
  /** Unplugged from the bus: hears its requests, answers none. */
  silent: boolean;
  /** Its next answer goes out with this unit id instead (a unit configured with another's address). */
  answerNextAs: number | undefined;
  requests: number;
}

/**
 * The units of one RS-485 line, answering read holding registers (03) and write single register
 * (06), written from the spec. Every request is logged with the time it arrived, to see that the
 * master waits for an answer, or its timeout, before the next request.
 */
class ModbusLine {
  readonly units = new Map<number, SimulatedUnit>();
  readonly log: Array<{ unitId: number; functionCode: number; address: number; at: number }> = [];
  private buffer = Buffer.alloc(0);

  /** `echo`: the master's adapter hears what it sends, so every byte of a request comes back to it first. */
  constructor(private readonly pair: PtyPair, unitIds: number[], private readonly echo = false) {
    for (const unitId of unitIds) this.units.set(unitId, { holding: new Uint16Array(2048), silent: false, answerNextAs: undefined, requests: 0 });
    pair.respond((chunk) => this.onBytes(chunk));
  }

  private onBytes(chunk: Buffer): void {
    if (this.echo) void this.pair.send(chunk);
    this.buffer = Buffer.concat([this.buffer, chunk]);
    // 03 and 06 requests are 8 bytes; a frame that fails its CRC moves the search on by one byte
    while (this.buffer.length >= 8) {
      const request = this.buffer.subarray(0, 8);
      if (!rtu([...request.subarray(0, 6)]).equals(request)) {
        this.buffer = this.buffer.subarray(1);
        continue;
      }
      this.buffer = this.buffer.subarray(8);
      const unit = this.units.get(request[0]);
      this.log.push({ unitId: request[0], functionCode: request[1], address: request.readUInt16BE(2), at: performance.now() });
      if (!unit) continue;
      unit.requests++;
      if (unit.silent) continue;
      const answer = this.answer(unit, request);
      if (unit.answerNextAs !== undefined) {
        answer[0] = unit.answerNextAs;
        unit.answerNextAs = undefined;
      }
      void this.pair.send(rtu(answer));
    }
  }

  private answer(unit: SimulatedUnit, request: Buffer): number[] {
    const [unitId, functionCode] = request;
    const address = request.readUInt16BE(2);
    if (functionCode === 0x03) {
      const count = request.readUInt16BE(4);
      if (address + count > unit.holding.length) return [unitId, 0x83, 0x02];
      return [unitId, 0x03, 2 * count, ...[...unit.holding.subarray(address, address + count)].flatMap((word) => [word >> 8, word & 0xff])];
    }
    if (functionCode === 0x06) {
      unit.holding[address] = request.readUInt16BE(4);
      return [...request.subarray(0, 6)];
    }
    return [unitId, functionCode | 0x80, 0x01];
  }
}

const RESPONSE_TIMEOUT_MS = 300;

/** A unit on the bus line: 9600 8N1, its id and register map its own. */
const unitProfile = (unitId: number, registers: unknown[], port: Record<string, unknown> = {}) => ({
  port: { baudRate: 9600, ...port },
  framing: { type: 'modbus', unitId, pollIntervalMs: 100, responseTimeoutMs: RESPONSE_TIMEOUT_MS },
  parser: { type: 'modbus', registers },
  commands: {},
});

/** Registers 200 apart: one read each, a long poll cycle. */
const LONG_MAP = Array.from({ length: 6 }, (_, index) => ({ name: `r${index}`, address: index * 200 + 1 }));

const PROFILES: Record<string, unknown> = {
  // an energy meter with a long register map
  meter: unitProfile(1, LONG_MAP),
  // a VFD whose speed is set by commands
  drive: unitProfile(2, [{ name: 'speed', address: 10, writable: true }, { name: 'status', address: 11 }]),
  soil: unitProfile(3, [{ name: 'moisture', address: 0 }]),
  fastDrive: unitProfile(4, [{ name: 'speed', address: 10 }], { baudRate: 19200 }),
  evenDrive: unitProfile(4, [{ name: 'speed', address: 10 }], { parity: 'even' }),
  console: { framing: { type: 'lines' }, parser: { type: 'json' } },
};

/** A line under test: profiles written, the units played on a socat pty, a daemon with `instances` on it, and an MQTT observer of telemetry and replies. */
interface LineUnderTest {
  dir: string;
  pair: PtyPair;
  line: ModbusLine;
  daemon: TestDaemon;
  client: MqttClient;
  messages: Array<{ topic: string; body: any }>;
}

async function startLine(options: {
  name: string; profiles: Record<string, unknown>; unitIds: number[]; echo?: boolean;
  prepare?: (line: ModbusLine) => void; devices: (dev: string, dir: string) => Record<string, unknown>;
}): Promise<LineUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), `outpost-modbus-${options.name}-`));
  const profilesDir = join(dir, 'profiles');
  mkdirSync(profilesDir);
  for (const [name, profile] of Object.entries(options.profiles)) writeFileSync(join(profilesDir, `${name}.yaml`), yaml.dump(profile));
  const pair = await PtyPair.create(dir, options.name);
  const line = new ModbusLine(pair, options.unitIds, options.echo);
  options.prepare?.(line);
  const daemon = await TestDaemon.start({
    config: {
      mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['#'], subscribe: ['#'] } },
      devices: { profilesDir, ...options.devices(pair.dev, dir) },
    },
  });
  const client = await connectClient(daemon.mqttUrl, { clientId: `observer-${options.name}` });
  const messages: LineUnderTest['messages'] = [];
  client.on('message', (topic, payload) => messages.push({ topic, body: JSON.parse(payload.toString()) }));
  await client.subscribeAsync(['devices/+/telemetry', 'devices/+/commands/reply'], { qos: 1 });
  return { dir, pair, line, daemon, client, messages };
}

async function stopLine(under: LineUnderTest | undefined): Promise<void> {
  if (!under) return;
  under.client.end(true);
  expect(await under.daemon.stop()).toBe(0);
  await under.daemon.cleanup();
  await under.pair.unplug().catch(() => undefined);
  rmSync(under.dir, { recursive: true, force: true });
}

describe('several Modbus units on one RS-485 line', () => {
  let under: LineUnderTest | undefined;
  let daemon: TestDaemon;
  let client: MqttClient;
  let pair: PtyPair;
  let line: ModbusLine;
  let messages: LineUnderTest['messages'] = [];

  const nextMessage = (topic: string, predicate: (body: any) => boolean = () => true) => eventually(() => {
    const index = messages.findIndex((message) => message.topic === topic && predicate(message.body));
    return index >= 0 && messages.splice(index, 1)[0].body;
  }, 8000);

  beforeAll(async () => {
    under = await startLine({
      name: 'bus', profiles: PROFILES, unitIds: [1, 2, 3, 4],
      prepare: (units) => {
        LONG_MAP.forEach(({ address }, index) => { units.units.get(1)!.holding[address] = 100 + index; });
        units.units.get(2)!.holding[11] = 7;
        units.units.get(4)!.holding[11] = 3;
        units.units.get(3)!.silent = true; // unplugged from the bus
      },
      devices: (dev, dir) => ({
        retryInitialMs: 100, retryMaxMs: 400,
        instances: [
          { name: 'meter1', profile: 'meter', port: dev },
          { name: 'drive1', profile: 'drive', port: dev },
          { name: 'soil1', profile: 'soil', port: dev },
          { name: 'fast1', profile: 'fastDrive', port: dev },
          { name: 'even1', profile: 'evenDrive', port: dev },
          { name: 'twin1', profile: 'drive', port: dev },
          { name: 'console1', profile: 'console', port: dev },
          // the same profile as drive1, at another address
          { name: 'drive2', profile: 'drive', port: dev, unitId: 4 },
          { name: 'console2', profile: 'console', port: join(dir, 'elsewhere'), unitId: 4 },
        ],
      }),
    });
    ({ daemon, client, pair, line, messages } = under);
    await eventually(async () => Object.values(await listDevices(daemon.socket)).filter((device) => device.connected).length === 4, 8000);
  }, 30_000);

  afterAll(() => stopLine(under));

  it('refuses a device on the line that is not a Modbus unit at the line\'s settings with its own unit id, saying which devices and which setting', async () => {
    const devices = await listDevices(daemon.socket);
    const refused = (index: number, reason: string) => `devices.instances.${index}.port: expected a port no other device uses, or Modbus units at the same port settings with distinct unit ids (${reason})`;
    expect(devices.fast1).toMatchObject({ disabled: true, connected: false, lastError: refused(3, 'device fast1 sets port.baudRate 19200, device meter1 on the same port 9600') });
    expect(devices.even1).toMatchObject({ disabled: true, lastError: refused(4, 'device even1 sets port.parity even, device meter1 on the same port none') });
    expect(devices.twin1).toMatchObject({ disabled: true, lastError: refused(5, 'device twin1 has unit id 2, as device drive1 on the same port does') });
    expect(devices.console1).toMatchObject({ disabled: true, lastError: refused(6, `${pair.dev} is device meter1's, and only Modbus units share a port: device console1's framing is lines`) });
    expect(devices.console2).toMatchObject({ disabled: true, lastError: 'devices.instances.8.unitId: expected no unit id (profile console is not Modbus: its framing is lines)' });
    for (const name of ['meter1', 'drive1', 'soil1', 'drive2']) expect(devices[name]).toMatchObject({ disabled: false, connected: true, port: pair.dev });
    // which unit of the line each row is
    expect([devices.meter1.unitId, devices.drive1.unitId, devices.soil1.unitId, devices.drive2.unitId, devices.console1.unitId]).toEqual([1, 2, 3, 4, null]);
    const table = (await outpost(daemon.socket, ['devices', 'ls'])).stdout.split('\n');
    expect(table.find((row) => row.startsWith('drive2 '))).toMatch(/ unit 4 /);
    expect(table.find((row) => row.startsWith('console1 '))).not.toContain('unit');
  });

  it('polls every unit on the line, each device with its own readings and counters; a silent unit costs only its own timeouts', async () => {
    expect(await nextMessage('devices/meter1/telemetry')).toMatchObject({ r0: 100, r5: 105 });
    expect(await nextMessage('devices/drive1/telemetry')).toMatchObject({ speed: 0, status: 7 });
    await eventually(() => line.units.get(3)!.requests >= 3, 8000);
    // the silent unit's polls fail, its own: the others keep polling without an error
    const devices = await listDevices(daemon.socket);
    expect(devices.soil1).toMatchObject({ connected: true, frames: 0, lastError: expect.stringMatching(/^no Modbus answer within \d+ ms reading holding register 0$/) });
    expect(devices.soil1.parseErrors).toBeGreaterThanOrEqual(2);
    expect(devices.meter1).toMatchObject({ parseErrors: 0, lastError: null });
    expect(devices.drive1).toMatchObject({ parseErrors: 0, lastError: null });
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/^outpost_device_parse_errors_total\{device="meter1"\} 0$/m);
    expect(metrics).toMatch(/^outpost_device_parse_errors_total\{device="soil1"\} [1-9]/m);

    // Modbus over Serial Line §2.4: one request on the line at a time, so after a request the silent
    // unit leaves unanswered the next one waits for its response timeout
    const log = [...line.log];
    const afterSilence = log.slice(0, -1).flatMap((entry, index) => (entry.unitId === 3 ? [log[index + 1].at - entry.at] : []));
    expect(afterSilence.length).toBeGreaterThanOrEqual(2);
    expect(afterSilence.filter((gap) => gap < RESPONSE_TIMEOUT_MS)).toEqual([]);

    // plugged back into the bus: read at its next poll
    line.units.get(3)!.holding[0] = 412;
    line.units.get(3)!.silent = false;
    expect(await nextMessage('devices/soil1/telemetry')).toMatchObject({ moisture: 412 });
    line.units.get(3)!.silent = true;
  });

  it('stops a silent unit\'s poll at its first unanswered read, so that its long map does not hold the line for a timeout per read', async () => {
    const meter = line.units.get(1)!;
    meter.silent = true;
    const since = line.log.length;
    await eventually(() => line.log.slice(since).filter((entry) => entry.unitId === 1).length >= 3, 8000);
    meter.silent = false;
    messages.length = 0;
    // the first read of each poll, never the five after it
    const reads = line.log.slice(since).filter((entry) => entry.unitId === 1).map((entry) => entry.address);
    expect(reads.slice(1, 3)).toEqual([LONG_MAP[0].address, LONG_MAP[0].address]);
    expect((await listDevices(daemon.socket)).meter1.lastError).toMatch(/^no Modbus answer within \d+ ms reading holding register 1$/);
    expect(await nextMessage('devices/meter1/telemetry', (body) => body.r5 === 105)).toMatchObject({ r0: 100, r5: 105 });
  });

  it('writes a command to one unit while the others are polled, the units taking turns on the line', async () => {
    const meterRequestsBefore = line.units.get(1)!.requests;
    client.publish('devices/drive1/commands', JSON.stringify({ speed: 1450, clientToken: 'spin' }), { qos: 1 });
    expect(await nextMessage('devices/drive1/commands/reply', (body) => body.clientToken === 'spin')).toMatchObject({ status: 'ok', key: 'speed' });
    expect(line.units.get(2)!.holding[10]).toBe(1450);
    expect(line.units.get(1)!.holding[10]).toBe(0);
    expect(await nextMessage('devices/drive1/telemetry', (body) => body.speed === 1450)).toMatchObject({ speed: 1450, status: 7 });
    await eventually(() => line.units.get(1)!.requests > meterRequestsBefore + 2, 8000);
    // the write went out between the meter's reads, which went on after it
    const write = line.log.findIndex((entry) => entry.unitId === 2 && entry.functionCode === 0x06);
    expect(line.log.slice(0, write).some((entry) => entry.unitId === 1)).toBe(true);
    expect(line.log.slice(write).some((entry) => entry.unitId === 1)).toBe(true);
    expect((await listDevices(daemon.socket)).drive1).toMatchObject({ commandsSent: 1, commandsFailed: 0 });
  });

  it('runs identical units from one profile, each at the unit id its instance sets', async () => {
    expect(await nextMessage('devices/drive2/telemetry', (body) => body.status === 3)).toMatchObject({ status: 3 });
    const driveSpeed = line.units.get(2)!.holding[10];
    client.publish('devices/drive2/commands', JSON.stringify({ speed: 900, clientToken: 'second' }), { qos: 1 });
    expect(await nextMessage('devices/drive2/commands/reply', (body) => body.clientToken === 'second')).toMatchObject({ status: 'ok', key: 'speed' });
    expect(line.units.get(4)!.holding[10]).toBe(900);
    expect(line.units.get(2)!.holding[10]).toBe(driveSpeed);
  });

  it('discards an answer from another unit id than the one asked, naming it', async () => {
    const { drive1: { parseErrors: errorsBefore }, meter1: { parseErrors: meterErrorsBefore } } = await listDevices(daemon.socket);
    line.units.get(2)!.holding[11] = 9;
    line.units.get(2)!.answerNextAs = 5;
    await eventually(async () => (await listDevices(daemon.socket)).drive1.parseErrors > errorsBefore, 8000);
    expect((await listDevices(daemon.socket)).drive1.lastError).toMatch(/^no Modbus answer within \d+ ms \(an answer from unit 5 discarded\) reading holding registers 10-11$/);
    // the next answer, from unit 2, is taken
    expect(await nextMessage('devices/drive1/telemetry', (body) => body.status === 9)).toMatchObject({ speed: 1450, status: 9 });
    expect((await listDevices(daemon.socket)).meter1.parseErrors).toBe(meterErrorsBefore);
  });

  it('shows every unit of the line lost when the adapter is unplugged, and polls them all again when it is back', async () => {
    await pair.unplug();
    await eventually(async () => {
      const devices = await listDevices(daemon.socket);
      return ['meter1', 'drive1', 'soil1', 'drive2'].every((name) => !devices[name].connected);
    }, 8000);
    const away = await listDevices(daemon.socket);
    for (const name of ['meter1', 'drive1', 'soil1', 'drive2']) expect(away[name]).toMatchObject({ connected: false, reconnects: 1, portDevice: null, lastError: expect.stringMatching(/^lost: |cannot open|no such file/i) });
    client.publish('devices/drive1/commands', JSON.stringify({ speed: 0, clientToken: 'away' }), { qos: 1 });
    expect(await nextMessage('devices/drive1/commands/reply', (body) => body.clientToken === 'away')).toMatchObject({ status: 'error', error: 'device not connected' });

    line.units.get(1)!.holding[LONG_MAP[0].address] = 321;
    messages.length = 0;
    await pair.plug();
    await eventually(async () => {
      const devices = await listDevices(daemon.socket);
      return ['meter1', 'drive1', 'soil1', 'drive2'].every((name) => devices[name].connected);
    }, 8000);
    expect(await nextMessage('devices/meter1/telemetry', (body) => body.r0 === 321)).toBeTruthy();
    expect(await nextMessage('devices/drive1/telemetry')).toMatchObject({ speed: 1450 });
    const back = await listDevices(daemon.socket);
    expect(back.meter1.portDevice).toMatch(/^\/dev\/pts\/\d+$/);
    // the port's error went with its opening again
    for (const name of ['meter1', 'drive1', 'soil1', 'drive2']) expect(back[name].lastError ?? '').not.toMatch(/^lost: |cannot open|no such file/i);
    expect(back.drive1.portDevice).toBe(back.meter1.portDevice);
  });
});

describe('the Modbus master of a line', () => {
  it('takes requests from the units in turn, so that one unit\'s long poll map does not hold another\'s command back', async () => {
    const sent: number[] = [];
    let master: ModbusMaster;
    // the slave answers each request at once: its unit id, then the request's echo (a write) or one register (a read)
    const answer = (frame: Buffer) => (frame[1] === 0x06 ? [...frame.subarray(0, 6)] : [frame[0], frame[1], 2, 0, frame[0]]);
    master = new ModbusMaster(async (frame) => {
      sent.push(frame[0]);
      setImmediate(() => master.push(rtu(answer(frame))));
    }, 0.01);
    const meter = master.unit(100, () => undefined);
    const drive = master.unit(100, () => undefined);
    const reads = Array.from({ length: 4 }, (_, index) => meter.transact(readRequest(1, 0x03, index, 1)));
    const write = drive.transact(writeRequest(2, 10, [1450]));
    await Promise.all([...reads, write]);
    expect(sent).toEqual([1, 2, 1, 1, 1]);
  });
});

describe('Modbus units behind an adapter that hears its own requests (port.localEcho)', () => {
  let under: LineUnderTest;

  beforeAll(async () => {
    under = await startLine({
      name: 'echo', echo: true, unitIds: [2],
      profiles: { drive: unitProfile(2, [{ name: 'speed', address: 10, writable: true }, { name: 'status', address: 11 }], { localEcho: true }) },
      prepare: (units) => { units.units.get(2)!.holding[11] = 7; },
      devices: (dev) => ({ instances: [{ name: 'here', profile: 'drive', port: dev }, { name: 'gone', profile: 'drive', port: dev, unitId: 5 }] }),
    });
  }, 30_000);

  afterAll(() => stopLine(under));

  it('reads and writes the unit that is there, and a write to a unit that is not fails', async () => {
    const { daemon, client, line, messages: received } = under;
    await eventually(() => received.some(({ topic, body }) => topic === 'devices/here/telemetry' && body.status === 7), 8000);
    client.publish('devices/here/commands', JSON.stringify({ speed: 1450, clientToken: 'here' }), { qos: 1 });
    client.publish('devices/gone/commands', JSON.stringify({ speed: 900, clientToken: 'gone' }), { qos: 1 });
    const reply = (token: string) => eventually(() => received.find(({ topic, body }) => topic.endsWith('/commands/reply') && body.clientToken === token)?.body, 8000);
    expect(await reply('here')).toMatchObject({ status: 'ok', key: 'speed' });
    expect(line.units.get(2)!.holding[10]).toBe(1450);
    // the echo of the write, byte for byte a unit's answer, was the gone unit's "answer" before
    expect(await reply('gone')).toMatchObject({ status: 'timeout', error: expect.stringMatching(/^no Modbus answer within \d+ ms/) });
    const devices = await listDevices(daemon.socket);
    expect(devices.here.parseErrors).toBe(0);
  });
});

describe('the Modbus master of an adapter that hears its own requests (port.localEcho)', () => {
  /** A line whose adapter echoes each request, split in two reads, before the unit's answer (none from an absent unit). */
  const echoingLine = (present: Set<number>) => {
    let master: ModbusMaster;
    const answer = (frame: Buffer) => rtu(frame[1] === 0x06 ? [...frame.subarray(0, 6)] : [frame[0], frame[1], 2, 0x01, 0x02]);
    master = new ModbusMaster(async (frame) => {
      setImmediate(() => {
        master.push(frame.subarray(0, 3));
        master.push(present.has(frame[0]) ? Buffer.concat([frame.subarray(3), answer(frame)]) : frame.subarray(3));
      });
    }, 0.01, true);
    return master;
  };

  it('takes the echo off before looking for the answer: a write to a unit that is not there fails', async () => {
    const master = echoingLine(new Set([1]));
    const unit1 = master.unit(50, () => undefined);
    const absent = master.unit(50, () => undefined);
    expect([...await unit1.transact(readRequest(1, 0x03, 7, 1))]).toEqual([0x01, 0x02]);
    await expect(unit1.transact(writeRequest(1, 10, [1450]))).resolves.toHaveLength(0);
    // the echo of a write is byte for byte the answer a unit gives it: without localEcho it was taken for one
    await expect(absent.transact(writeRequest(5, 10, [1450]))).rejects.toThrow(/^no Modbus answer within \d+ ms$/);
    expect([...await unit1.transact(readRequest(1, 0x03, 7, 1))]).toEqual([0x01, 0x02]);
  });
  it('takes an answer for one when the adapter did not echo the request, though it begins as the request does', async () => {
    let master: ModbusMaster;
    let split = false;
    master = new ModbusMaster(async (frame) => {
      const answer = rtu([frame[0], frame[1], 2, 0x00, 0x2a]);
      // whole, then in two reads: the first holds only the unit id and function code the request begins with too
      setImmediate(() => {
        if (!split) return master.push(answer);
        master.push(answer.subarray(0, 2));
        setImmediate(() => master.push(answer.subarray(2)));
      });
    }, 0.01, true);
    const unit = master.unit(50, () => undefined);
    expect([...await unit.transact(readRequest(1, 0x03, 0, 1))]).toEqual([0x00, 0x2a]);
    split = true;
    expect([...await unit.transact(readRequest(1, 0x03, 0, 1))]).toEqual([0x00, 0x2a]);
  });
});
