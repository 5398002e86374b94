import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { ModbusSlave, PtyPair, listDevices } from './helpers/serial.js';
import { ShadowMqttClient } from './helpers/shadow.js';

// --- profiles of the devices under test ---

const PROFILES: Record<string, unknown> = {
  gps: {
    framing: { type: 'lines', delimiter: '\r\n', maxFrameBytes: 82 },
    parser: { type: 'nmea' },
    shadow: { minIntervalMs: 0, desired: false },
  },
  arduino: {
    framing: { type: 'lines', maxFrameBytes: 256 },
    parser: { type: 'json' },
    shadow: { minIntervalMs: 0 },
    // the test answers through socat; 1.5 s was outrun once on a loaded CI machine (a spurious
    // timeout). Within nextMessage's 6 s, so the command left unanswered still times out in time.
    commands: { template: 'SET ${key} ${value}\n', ack: '^OK ${key}$', error: '^ERR ${key}', timeoutMs: 4000 },
  },
  weather: {
    framing: { type: 'lines', maxFrameBytes: 128 },
    parser: { type: 'csv', columns: ['station', 'temperature', 'humidity'] },
  },
  thermo: {
    framing: { type: 'lines' },
    parser: { type: 'json' },
    shadow: { minIntervalMs: 3000, changeThreshold: 0.5 },
  },
  scale: {
    // a frame is split across two writes below: no pause of a loaded machine between them may drop its first part
    framing: { type: 'fixed', length: 10, gapMs: 10_000 },
    parser: { type: 'regex', pattern: '^\\s*(?<weight>-?\\d+\\.\\d+)kg(?<stability>[SU])$' },
  },
  meter: {
    framing: { type: 'modbus', unitId: 7, pollIntervalMs: 150, responseTimeoutMs: 1000 },
    parser: {
      type: 'modbus', registers: [
        { name: 'voltage', address: 0, table: 'input', type: 'uint16', scale: 0.1, unit: 'V' },
        { name: 'power', address: 2, table: 'input', type: 'float32', unit: 'W' },
        { name: 'energy', address: 4, table: 'input', type: 'uint32', unit: 'Wh' },
        { name: 'relay', address: 10, table: 'holding', type: 'uint16', writable: true },
        { name: 'limit', address: 12, table: 'holding', type: 'int32', scale: 0.01, writable: true },
        { name: 'serial', address: 50, table: 'holding', type: 'uint16', writable: true },
      ],
    },
    shadow: { minIntervalMs: 0 },
    commands: {},
  },
};

/** GGA/RMC with a correct checksum (XOR of the bytes between $ and *). */
function nmea(body: string): string {
  let sum = 0;
  for (const char of body) sum ^= char.charCodeAt(0);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

describe('serial devices over socat pseudo-terminals', () => {
  let dir: string;
  let daemon: TestDaemon;
  let client: MqttClient;
  let shadows: ShadowMqttClient;
  const pairs: Record<string, PtyPair> = {};
  const messages: Array<{ topic: string; body: any }> = [];
  let slave: ModbusSlave;

  const nextMessage = (topic: string, predicate: (body: any) => boolean = () => true) => eventually(() => {
    const index = messages.findIndex((message) => message.topic === topic && predicate(message.body));
    return index >= 0 && messages.splice(index, 1)[0].body;
  }, 6000);

  async function reported(thing: string): Promise<any> {
    const answer = await shadows.request(`$aws/things/${thing}/shadow/get`);
    return answer.outcome === 'accepted' ? answer.body.state.reported ?? {} : {};
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-devices-'));
    const profilesDir = join(dir, 'profiles');
    mkdirSync(profilesDir);
    for (const [name, profile] of Object.entries(PROFILES)) writeFileSync(join(profilesDir, `${name}.yaml`), yaml.dump(profile));
    for (const name of Object.keys(PROFILES)) pairs[name] = await PtyPair.create(dir, name);
    slave = new ModbusSlave(pairs.meter, 7);
    slave.input.set([2301, 0, ...[0x4348, 0x0000], 0x0001, 0x0002]); // 230.1 V, 200.0 W (float32 0x43480000), 65538 Wh
    daemon = await TestDaemon.start({
      config: {
        shadows: { maxDocumentBytes: 700 },
        mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } },
        devices: {
          profilesDir, retryInitialMs: 100, retryMaxMs: 400,
          instances: [
            { name: 'gps1', profile: 'gps', port: pairs.gps.dev, thing: 'tractor' },
            { name: 'arduino1', profile: 'arduino', port: pairs.arduino.dev, thing: 'greenhouse' },
            { name: 'weather1', profile: 'weather', port: pairs.weather.dev },
            { name: 'scale1', profile: 'scale', port: pairs.scale.dev },
            { name: 'thermo1', profile: 'thermo', port: pairs.thermo.dev, thing: 'barn' },
            { name: 'meter1', profile: 'meter', port: pairs.meter.dev, thing: 'meter' },
          ],
        },
      },
    });
    client = await connectClient(daemon.mqttUrl, { clientId: 'observer' });
    client.on('message', (topic, payload) => {
      let body: any;
      try { body = JSON.parse(payload.toString()); } catch { body = payload.toString(); }
      messages.push({ topic, body });
    });
    await client.subscribeAsync(['devices/+/telemetry', 'devices/+/commands/reply'], { qos: 1 });
    shadows = await ShadowMqttClient.connect(daemon.mqttUrl, { clientId: 'shadow-reader' },
      ['tractor', 'greenhouse', 'meter', 'barn'].flatMap((thing) => [`$aws/things/${thing}/shadow/get/+`, `$aws/things/${thing}/shadow/update/+`]));
    await eventually(async () => Object.values(await listDevices(daemon.socket)).every((device) => device.connected), 8000);
  }, 30_000);

  afterAll(async () => {
    client?.end(true);
    shadows?.end();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    for (const pair of Object.values(pairs)) await pair.unplug().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('turns NMEA GGA and RMC sentences into telemetry and the shadow, skipping bad checksums', async () => {
    await pairs.gps.send(nmea('GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'));
    const gga = await nextMessage('devices/gps1/telemetry', (body) => body.sentence === 'GGA');
    expect(gga).toMatchObject({ time: '12:35:19.00', latitude: 48.1173, longitude: 11.5166667, fixQuality: 1, satellites: 8, hdop: 0.9, altitude: 545.4, geoidSeparation: 46.9 });
    expect(typeof gga.timestamp).toBe('number');

    const corrupted = nmea('GNRMC,123520.00,A,4807.100,N,01131.000,E,022.4,084.4,230394,003.1,W,A').replace(/\*[0-9A-F]{2}/, '*00');
    await pairs.gps.send(corrupted);
    await pairs.gps.send(nmea('GNRMC,123521.00,A,3351.000,S,15112.000,W,022.4,084.4,230394,003.1,W,A'));
    const rmc = await nextMessage('devices/gps1/telemetry', (body) => body.sentence === 'RMC');
    expect(rmc).toMatchObject({ valid: true, latitude: -33.85, longitude: -151.2, speedKnots: 22.4, course: 84.4, date: '1994-03-23' });
    await eventually(async () => (await reported('tractor')).latitude === -33.85);
    expect(await reported('tractor')).toMatchObject({ satellites: 8, altitude: 545.4, valid: true, date: '1994-03-23' });
    expect((await listDevices(daemon.socket)).gps1.parseErrors).toBe(1);
  });

  it('publishes JSON lines and CSV rows with named columns', async () => {
    await pairs.arduino.send('{"temperature": 21.5, "humidity": 40, "door": "closed"}\n');
    expect(await nextMessage('devices/arduino1/telemetry')).toMatchObject({ temperature: 21.5, humidity: 40, door: 'closed' });
    await eventually(async () => (await reported('greenhouse')).temperature === 21.5);

    // a reading with a timestamp of its own keeps it: when the device measured is its data
    await pairs.arduino.send('{"temperature": 22, "timestamp": 1700000000}\n');
    expect(await nextMessage('devices/arduino1/telemetry')).toEqual({ temperature: 22, timestamp: 1700000000 });
    const before = Date.now();
    await pairs.arduino.send('{"temperature": 23}\n');
    expect((await nextMessage('devices/arduino1/telemetry')).timestamp).toBeGreaterThanOrEqual(before);

    await pairs.weather.send('north,-3.25,88\r\nsouth,4,\n');
    expect(await nextMessage('devices/weather1/telemetry', (body) => body.station === 'north')).toMatchObject({ temperature: -3.25, humidity: 88 });
    expect(await nextMessage('devices/weather1/telemetry', (body) => body.station === 'south')).toMatchObject({ temperature: 4, humidity: null });
  });

  it('keeps an integer a double would round (a 64-bit counter, a long serial number) as its digits, in telemetry and the shadow', async () => {
    await pairs.arduino.send('{"odometer": 9007199254740993, "uptime": 9007199254740991, "imei": "353456789012345678"}\n');
    expect(await nextMessage('devices/arduino1/telemetry', (body) => 'odometer' in body)).toMatchObject({ odometer: '9007199254740993', uptime: 9007199254740991, imei: '353456789012345678' });
    await eventually(async () => (await reported('greenhouse')).odometer === '9007199254740993');
    expect(await reported('greenhouse')).toMatchObject({ uptime: 9007199254740991 });

    await pairs.weather.send('east,12345678901234567890,-9007199254740991\n');
    expect(await nextMessage('devices/weather1/telemetry', (body) => body.station === 'east')).toMatchObject({ station: 'east', temperature: '12345678901234567890', humidity: -9007199254740991 });
  });

  it('throttles shadow updates by minimum interval and change threshold, ending at the newest values', async () => {
    await pairs.thermo.send('{"t": 20, "h": 50}\n');
    await eventually(async () => (await reported('barn')).t === 20);
    const updates = () => shadows.events.filter((event) => event.topic === '$aws/things/barn/shadow/update/accepted').map((event) => event.body.state.reported);
    await pairs.thermo.send('{"t": 20.3, "h": 50}\n{"t": 24, "h": 50}\n{"t": 25, "h": 51}\n');
    expect(await nextMessage('devices/thermo1/telemetry', (body) => body.t === 25)).toMatchObject({ h: 51 });
    expect(await reported('barn')).toMatchObject({ t: 20, h: 50 }); // within the 3 s interval: held back
    await eventually(async () => (await reported('barn')).t === 25, 8000);
    expect(await reported('barn')).toMatchObject({ t: 25, h: 51 });
    await pairs.thermo.send('{"t": 25.4, "h": 51}\n{"t": 25.4, "h": 60}\n');     // t moved less than the threshold
    await eventually(async () => (await reported('barn')).h === 60, 8000);
    expect(await reported('barn')).toMatchObject({ t: 25 });
    expect(updates()).toEqual([{ t: 20, h: 50 }, { t: 25, h: 51 }, { h: 60 }]);

    // A reading the shadow refuses (the document would exceed shadows.maxDocumentBytes) shows as the device's last error.
    await pairs.thermo.send(`{"note": "${'n'.repeat(900)}", "t": 30}\n`);
    await eventually(async () => /^shadow update rejected: .+ \(413\)$/.test((await listDevices(daemon.socket)).thermo1.lastError ?? ''), 8000);
    // the values of a refused update were not reported: a steady one of them goes with the next reading
    await pairs.thermo.send('{"t": 30, "h": 60}\n');
    await eventually(async () => (await reported('barn')).t === 30, 8000);
  }, 30_000);

  it('cuts fixed-length frames and parses them with a regular expression of named groups', async () => {
    await pairs.scale.send(' 12.345kgS');
    await pairs.scale.send('  -0.5');                                                // a frame split across writes
    await pairs.scale.send('0kgU??????????');                                         // then one that does not match
    await pairs.scale.send('  7.000kgS');
    expect(await nextMessage('devices/scale1/telemetry', (body) => body.weight === 12.345)).toMatchObject({ stability: 'S' });
    expect(await nextMessage('devices/scale1/telemetry', (body) => body.weight === -0.5)).toMatchObject({ stability: 'U' });
    expect(await nextMessage('devices/scale1/telemetry', (body) => body.weight === 7)).toMatchObject({ stability: 'S' });
    expect((await listDevices(daemon.socket)).scale1).toMatchObject({ frames: 4, parseErrors: 1, lastError: 'no match' });
  });

  it('counts and skips garbage, partial lines, bad frames and over-long lines, and keeps going', async () => {
    const before = (await listDevices(daemon.socket)).arduino1;
    await pairs.arduino.send(Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a]));          // binary noise, then a newline
    await pairs.arduino.send('{"temperature": 2');                                  // a partial line…
    await pairs.arduino.send('x.5}\n');                                              // …completed into bad JSON
    await pairs.arduino.send('[1,2,3]\n');                                           // JSON, but not an object
    await pairs.arduino.send(`{"long": "${'x'.repeat(600)}`);                         // over maxFrameBytes, no newline yet
    await pairs.arduino.send(`${'y'.repeat(300)}"}\n`);
    await pairs.weather.send('only,two\n');                                          // CSV with a missing column
    await pairs.gps.send('$GPGGA,garbage*ZZ\r\n');
    await pairs.arduino.send('{"temperature": 22.5}\n');
    expect(await nextMessage('devices/arduino1/telemetry')).toMatchObject({ temperature: 22.5 });
    const after = await listDevices(daemon.socket);
    expect(after.arduino1.parseErrors - before.parseErrors).toBe(4);
    expect(after.arduino1.oversizedFrames - before.oversizedFrames).toBe(1);
    expect(after.weather1.parseErrors).toBe(1);
    expect(after.arduino1.connected).toBe(true);
    expect(messages.filter((message) => message.topic === 'devices/arduino1/telemetry')).toEqual([]);
  });

  it('writes a desired shadow change to the port and reports it once the device acknowledges', async () => {
    const update = await shadows.request('$aws/things/greenhouse/shadow/update', { state: { desired: { fan: 'on' } } });
    expect(update.outcome).toBe('accepted');
    await pairs.arduino.receivedText(/SET fan on\n/);
    await pairs.arduino.send('OK fan\n');
    expect(await nextMessage('devices/arduino1/commands/reply')).toMatchObject({ device: 'arduino1', key: 'fan', value: 'on', status: 'ok', source: 'shadow', response: 'OK fan' });
    await eventually(async () => (await reported('greenhouse')).fan === 'on');
    const document = await shadows.request('$aws/things/greenhouse/shadow/get');
    expect(document.body.state.delta).toBeUndefined();

    // a delta a client publishes is the broker's to drop (AWS allows only subscribing to it): never a command
    pairs.arduino.received = Buffer.alloc(0);
    client.publish('$aws/things/greenhouse/shadow/update/delta', JSON.stringify({ version: 1e15, timestamp: 1, state: { fan: 'off' } }), { qos: 1 });
    await shadows.request('$aws/things/greenhouse/shadow/update', { state: { desired: { fan: 'auto' } } });
    await pairs.arduino.receivedText(/SET fan auto\n/);
    expect(pairs.arduino.received.toString()).not.toContain('SET fan off');
    await pairs.arduino.send('OK fan\n');
    expect(await nextMessage('devices/arduino1/commands/reply', (body) => body.value === 'auto')).toMatchObject({ status: 'ok', source: 'shadow' });
  });

  it('runs commands from the command topic with error answers and timeouts on the reply topic', async () => {
    pairs.arduino.received = Buffer.alloc(0);
    client.publish('devices/arduino1/commands', JSON.stringify({ pump: 2, clientToken: 'c-1' }), { qos: 1 });
    await pairs.arduino.receivedText(/SET pump 2\n/);
    await pairs.arduino.send('{"temperature": 23}\nERR pump overload\n');            // a reading arrives before the answer
    expect(await nextMessage('devices/arduino1/commands/reply')).toMatchObject({ key: 'pump', value: 2, status: 'error', response: 'ERR pump overload', clientToken: 'c-1' });
    expect(await nextMessage('devices/arduino1/telemetry')).toMatchObject({ temperature: 23 });

    client.publish('devices/arduino1/commands', JSON.stringify({ light: 'dim' }), { qos: 1 });
    expect(await nextMessage('devices/arduino1/commands/reply')).toMatchObject({ key: 'light', status: 'timeout' });
    client.publish('devices/arduino1/commands', 'not json', { qos: 1 });
    expect(await nextMessage('devices/arduino1/commands/reply')).toMatchObject({ status: 'error', error: 'expected a JSON object of keys to set' });
    const flood = Object.fromEntries(Array.from({ length: 500 }, (_, index) => [`k${index}`, index]));
    client.publish('devices/arduino1/commands', JSON.stringify({ ...flood, clientToken: 'flood' }), { qos: 1 });
    expect(await nextMessage('devices/arduino1/commands/reply')).toMatchObject({ status: 'error', error: 'expected at most 16 keys, got 500', clientToken: 'flood' });

    const status = (await listDevices(daemon.socket)).arduino1;
    expect(status.commandsSent).toBeGreaterThanOrEqual(3);
    expect(status.commandsFailed).toBe(2); // the message that is not JSON never became a command
    expect(await reported('greenhouse')).not.toHaveProperty('pump');
  });

  it('polls a Modbus RTU meter (CRC checked) and writes registers from commands and desired state', async () => {
    const reading = await nextMessage('devices/meter1/telemetry');
    expect(reading).toMatchObject({ voltage: 230.1, power: 200, energy: 65538, relay: 0, limit: 0 });
    await eventually(async () => (await reported('meter')).voltage === 230.1);

    const errorsBefore = (await listDevices(daemon.socket)).meter1.parseErrors;
    slave.corruptNext = true;
    await eventually(async () => !slave.corruptNext && (await listDevices(daemon.socket)).meter1.parseErrors > errorsBefore);
    expect((await listDevices(daemon.socket)).meter1.lastError).toMatch(/^Modbus CRC mismatch reading (holding registers 10-50|input registers 0-5)$/);

    client.publish('devices/meter1/commands', JSON.stringify({ relay: 1, limit: -12.5 }), { qos: 1 });
    // the reply whole, so that a failure shows its error
    expect(await nextMessage('devices/meter1/commands/reply', (body) => body.key === 'relay')).toEqual(expect.objectContaining({ status: 'ok', key: 'relay' }));
    expect(await nextMessage('devices/meter1/commands/reply', (body) => body.key === 'limit')).toEqual(expect.objectContaining({ status: 'ok', key: 'limit' }));
    expect(slave.writes).toEqual(expect.arrayContaining([{ address: 10, values: [1] }, { address: 12, values: [0xffff, 0xfb1e] }]));
    // the two registers are written one after the other: a poll between them reads only the first
    expect(await nextMessage('devices/meter1/telemetry', (body) => body.relay === 1 && body.limit === -12.5)).toMatchObject({ relay: 1, limit: -12.5 });

    await shadows.request('$aws/things/meter/shadow/update', { state: { desired: { relay: 0 } } });
    await eventually(() => slave.holding[10] === 0 && slave.writes.some((write) => write.address === 10 && write.values[0] === 0));
    await eventually(async () => (await reported('meter')).relay === 0);

    client.publish('devices/meter1/commands', JSON.stringify({ voltage: 5, relay: 70000, serial: 1 }), { qos: 1 });
    expect(await nextMessage('devices/meter1/commands/reply', (body) => body.key === 'voltage')).toMatchObject({ status: 'error', error: 'no writable register "voltage"' });
    expect(await nextMessage('devices/meter1/commands/reply', (body) => body.value === 70000)).toMatchObject({ status: 'error', error: 'relay: 70000 is out of range for uint16' });
    expect(await nextMessage('devices/meter1/commands/reply', (body) => body.key === 'serial')).toMatchObject({ status: 'error', error: 'Modbus exception 2 (illegal data address)' });
  });

  it('reads a float32 register holding NaN (a meter without its sensor) as null, and reports it again once it has a value', async () => {
    await eventually(async () => (await reported('meter')).power === 200);
    slave.input.set([0xffff, 0xffff], 2);
    expect(await nextMessage('devices/meter1/telemetry', (body) => body.power === null)).toMatchObject({ voltage: 230.1, power: null });
    await eventually(async () => !('power' in (await reported('meter'))));
    slave.input.set([0x4348, 0x0000], 2);
    expect(await nextMessage('devices/meter1/telemetry', (body) => body.power === 200)).toMatchObject({ power: 200 });
    await eventually(async () => (await reported('meter')).power === 200);
  });

  it('survives unplug and replug: retried with backoff, picked up again when the tty returns, desired state caught up', async () => {
    await pairs.arduino.unplug();
    await eventually(async () => !(await listDevices(daemon.socket)).arduino1.connected);
    expect((await listDevices(daemon.socket)).arduino1).toMatchObject({ port: pairs.arduino.dev, portDevice: null });
    await shadows.request('$aws/things/greenhouse/shadow/update', { state: { desired: { fan: 'off' } } });
    expect(await nextMessage('devices/arduino1/commands/reply')).toMatchObject({ key: 'fan', value: 'off', status: 'error', error: 'device not connected' });
    await new Promise((resolve) => setTimeout(resolve, 600)); // a few failed attempts to reopen

    pairs.arduino.received = Buffer.alloc(0);
    await pairs.arduino.plug();
    await eventually(async () => (await listDevices(daemon.socket)).arduino1.connected, 8000);
    // The desired change made while it was away is written once it is back.
    await pairs.arduino.receivedText(/SET fan off\n/);
    await pairs.arduino.send('OK fan\n{"temperature": 30}\n');
    expect(await nextMessage('devices/arduino1/commands/reply')).toMatchObject({ key: 'fan', value: 'off', status: 'ok' });
    expect(await nextMessage('devices/arduino1/telemetry')).toMatchObject({ temperature: 30 });
    await eventually(async () => (await reported('greenhouse')).fan === 'off');
    const status = (await listDevices(daemon.socket)).arduino1;
    // the configured path, and the tty its link leads to (as /dev/serial/by-id/… to /dev/ttyUSB0)
    expect(status).toMatchObject({ connected: true, port: pairs.arduino.dev, portDevice: realpathSync(pairs.arduino.dev), reconnects: 1 });
    expect(status.portDevice).toMatch(/^\/dev\/pts\/\d+$/);
    expect((await outpost(daemon.socket, ['devices', 'ls'])).stdout).toMatch(new RegExp(`^arduino1\\s+arduino\\s+yes\\s+${pairs.arduino.dev} -> ${status.portDevice}\\s`, 'm'));

    // A polled Modbus meter stops being polled while away and is polled again once back.
    await pairs.meter.unplug();
    await eventually(async () => !(await listDevices(daemon.socket)).meter1.connected);
    const requestsWhileAway = slave.requests;
    slave.input[0] = 2345;
    await pairs.meter.plug();
    expect(await nextMessage('devices/meter1/telemetry', (body) => body.voltage === 234.5)).toBeTruthy();
    expect(slave.requests).toBeGreaterThan(requestsWhileAway);

    const table = await outpost(daemon.socket, ['devices', 'ls']);
    expect(table.stdout).toMatch(/^NAME\s+PROFILE\s+CONNECTED\s+PORT\s+LAST FRAME\s+FRAMES\/S/);
    expect(table.stdout).toMatch(/arduino1\s+arduino\s+yes\s+\S+arduino-dev/);
  });

  it('exposes per-device Prometheus metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(text).toMatch(/outpost_device_connected\{device="arduino1"\} 1/);
    expect(text).toMatch(/outpost_device_frames_total\{device="gps1"\} [1-9]/);
    expect(text).toMatch(/outpost_device_parse_errors_total\{device="arduino1"\} [1-9]/);
    expect(text).toMatch(/outpost_device_commands_total\{device="arduino1",result="timeout"\} 1/);
    expect(text).toMatch(/outpost_device_last_frame_timestamp_seconds\{device="meter1"\} \d/);
  });
});
