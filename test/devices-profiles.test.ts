import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MockBinding } from '@serialport/binding-mock';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTPOST, OUTPOSTD, ROOT, TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { ModbusMaster } from '../src/devices/modbus-master.js';
import { crc16, readRequest, writeRequest } from '../src/devices/parsers/modbus.js';
import { parseNmea } from '../src/devices/parsers/nmea.js';
import { csvParser, parseJsonLine, regexParser } from '../src/devices/parsers/text.js';
import { ParseError } from '../src/devices/parsers/reading.js';
import { LineFramer } from '../src/devices/framing.js';
import { resolvePortPath } from '../src/devices/port.js';

const SHIPPED = join(ROOT, 'firmware-configs', 'devices');

/** Runs a command to its end (bounded), for the CLI without a daemon and for outpostd refusing to start. */
function run(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OUTPOST_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    // decoded across reads: a character's bytes may come in two
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('device profiles', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-profiles-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ships a u-blox NMEA GPS, an Arduino printing JSON lines and a Modbus RTU energy meter, all valid', async () => {
    const files = readdirSync(SHIPPED).filter((file) => file.endsWith('.yaml')).map((file) => join(SHIPPED, file));
    const checked = await run([OUTPOST, 'devices', 'check', ...files, '--json']);
    expect(checked.code, checked.stderr).toBe(0);
    const results = JSON.parse(checked.stdout).profiles;
    expect(results.map((result: any) => [result.framing, result.parser]).sort()).toEqual([['lines', 'json'], ['lines', 'nmea'], ['modbus', 'modbus']]);
  });

  it('names every bad key and the reason, in the config loader\'s format', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, yaml.dump({
      port: { path: '/dev/ttyUSB0', usb: { vendorId: '2341' }, baudRate: 'fast', parity: 'sometimes', stopBits: 3 },
      framing: { type: 'lines', delimiter: '', maxFrameBytes: 1e6 },
      parser: { type: 'modbus', registers: [{ name: 'volts', address: 70000, type: 'float64', table: 'input', writable: true }] },
      telemetry: { topic: 'devices/+/telemetry' },
      commands: { ack: '(unclosed', timeoutMs: 0 },
      colour: 'blue',
    }));
    const checked = await run([OUTPOST, 'devices', 'check', file]);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toContain(`${file}: invalid device profile:`);
    for (const line of [
      'port.baudRate: expected baud rate ≥ 1, got "fast"',
      'port.parity: expected none, even, odd, mark or space, got "sometimes"',
      'port.stopBits: expected 1, 1.5 or 2, got 3',
      'framing.delimiter: expected a delimiter of 1-8 characters, got ""',
      'framing.maxFrameBytes: expected bytes 1-65536, got 1000000',
      'parser.registers.0.address: expected a register address 0-65535, got 70000',
      'parser.registers.0.type: expected uint16, int16, uint32, int32 or float32, got "float64"',
      'telemetry.topic: expected a topic without wildcards, got "devices/+/telemetry"',
      'commands.timeoutMs: expected milliseconds 1-2147483647 (about 24 days), got 0',
      'colour: unknown key',
    ]) expect(checked.stdout).toContain(`  ${line}`);
    expect(checked.stderr).toContain('1 of 1 profiles invalid');

    writeFileSync(file, yaml.dump({ port: { path: '/dev/x', usb: { vendorId: '2341' } }, framing: { type: 'modbus', unitId: 0 }, parser: { type: 'json' } }));
    const second = await run([OUTPOST, 'devices', 'check', file]);
    expect(second.stdout).toContain('  port: expected either path or usb, not both');
    expect(second.stdout).toContain('  framing.unitId: expected a unit id 1-247, got 0');

    writeFileSync(file, yaml.dump({ framing: { type: 'lines' }, parser: { type: 'modbus', registers: [{ name: 'v', address: 1, table: 'input', writable: true, scale: Infinity }] } }));
    const third = await run([OUTPOST, 'devices', 'check', file]);
    expect(third.stdout).toContain('  parser.type: expected framing type modbus and parser type modbus together');
    expect(third.stdout).toContain('  parser.registers.0.writable: expected writable only on holding registers');
    // YAML's .inf: every reading would be null and every written value 0
    expect(third.stdout).toContain('  parser.registers.0.scale: expected a non-zero finite number');

    // a second reading of one name would overwrite the first in every reading
    writeFileSync(file, yaml.dump({ framing: { type: 'modbus', unitId: 1 }, parser: { type: 'modbus', registers: [
      { name: 'power', address: 0, type: 'float32' }, { name: 'energy', address: 65535, type: 'uint32' }, { name: 'power', address: 4 }] } }));
    const duplicates = await run([OUTPOST, 'devices', 'check', file]);
    expect(duplicates.stdout).toContain('  parser.registers.2.name: expected a unique register name ("power" is used twice)');
    expect(duplicates.stdout).toContain('  parser.registers.1.address: expected an address 0-65534 for a uint32 (two registers), got 65535\n');
    writeFileSync(file, yaml.dump({ framing: { type: 'lines' }, parser: { type: 'csv', columns: ['station', 'temperature', 'temperature'] } }));
    expect((await run([OUTPOST, 'devices', 'check', file])).stdout).toContain('  parser.columns.2: expected a unique column name ("temperature" is used twice)');

    // replies (or readings) published where commands are taken would come back as commands, without end
    writeFileSync(file, yaml.dump({ framing: { type: 'lines' }, parser: { type: 'json' }, telemetry: { topic: 'devices/${device}/io' },
      commands: { topic: 'devices/${device}/io', replyTopic: 'devices/${device}/io' } }));
    const fourth = await run([OUTPOST, 'devices', 'check', file]);
    expect(fourth.stdout).toContain('  commands.replyTopic: expected a topic outside commands.topic: what is published there would be taken for commands');
    expect(fourth.stdout).toContain('  telemetry.topic: expected a topic outside commands.topic: what is published there would be taken for commands');

    // a misspelt placeholder would go out as written: readings on a topic nobody reads
    writeFileSync(file, yaml.dump({ framing: { type: 'lines' }, parser: { type: 'json' }, telemetry: { topic: 'devices/${id}/telemetry' },
      commands: { template: '${key}=${val}\n', ack: '^OK ${key}', error: '^ERR ${value}' } }));
    const fifth = await run([OUTPOST, 'devices', 'check', file]);
    expect(fifth.stdout).toContain('  telemetry.topic: expected only the placeholders ${device}, ${thing} (${id} is not one), got "devices/${id}/telemetry"\n');
    expect(fifth.stdout).toContain('  commands.template: expected only the placeholders ${key}, ${value}, ${device}, ${thing} (${val} is not one)');
    expect(fifth.stdout).toContain('  commands.error: expected only the placeholders ${key} (${value} is not one)');
    expect(fifth.stdout).not.toContain('commands.ack');

    writeFileSync(file, 'framing: [unclosed');
    expect((await run([OUTPOST, 'devices', 'check', file])).stdout).toContain(`${file}: invalid YAML`);
    expect((await run([OUTPOST, 'devices', 'check', join(dir, 'missing.yaml')])).stdout).toContain('no such profile file');
  });

  it('runs the daemon with a device of a bad profile disabled, its reason listed, logged and counted; a bad devices section stops it', async () => {
    const profilesDir = join(dir, 'profiles');
    mkdirSync(profilesDir);
    writeFileSync(join(profilesDir, 'broken.yaml'), yaml.dump({ framing: { type: 'lines' }, parser: { type: 'csv', columns: [] } }));
    writeFileSync(join(profilesDir, 'portless.yaml'), yaml.dump({ framing: { type: 'lines' }, parser: { type: 'json' } }));
    writeFileSync(join(profilesDir, 'per-thing.yaml'), yaml.dump({ framing: { type: 'lines' }, parser: { type: 'json' }, telemetry: { topic: 'things/${thing}/serial' } }));
    // one of the shipped profiles' names: this directory's comes first
    writeFileSync(join(profilesDir, 'ublox-gps.yaml'), yaml.dump({ framing: { type: 'lines' }, parser: { type: 'json' } }));
    const daemon = await TestDaemon.start({
      config: {
        devices: {
          profilesDir, retryInitialMs: 50,
          instances: [
            { name: 'broken', profile: 'broken', port: '/dev/null' },
            { name: 'portless', profile: 'portless' },
            { name: 'thingless', profile: 'per-thing', port: '/dev/null' },
            { name: 'missing', profile: 'nowhere', port: '/dev/null' },
            { name: 'good', profile: 'portless', port: join(dir, 'absent-tty') },
            { name: 'twin', profile: 'portless', port: join(dir, 'absent-tty') },
            { name: 'own', profile: 'ublox-gps' },
            { name: 'shipped', profile: 'sdm120-energy-meter', port: join(dir, 'absent-meter') },
          ],
        },
      },
    });
    try {
      const listed = JSON.parse((await outpost(daemon.socket, ['devices', 'ls', '--json'])).stdout).devices;
      expect(listed).toMatchObject([
        { name: 'broken', disabled: true, connected: false, lastError: `devices.instances.0.profile: ${join(profilesDir, 'broken.yaml')}: invalid device profile:\n  parser.columns: expected a list of column names` },
        // no port named: JSON's null, which the table shows as -
        { name: 'portless', disabled: true, port: null, lastError: 'devices.instances.1.port: expected a port path (profile portless sets neither port.path nor port.usb)' },
        { name: 'thingless', disabled: true, lastError: 'devices.instances.2.thing: expected a thing name (profile per-thing uses ${thing} in telemetry.topic)' },
        { name: 'missing', disabled: true, lastError: `devices.instances.3.profile: ${join(profilesDir, 'nowhere.yaml')}: no such profile file` },
        { name: 'good', disabled: false, connected: false, lastError: expect.stringContaining('absent-tty') },
        // only Modbus units share a port: each would read the other's bytes as its frames
        { name: 'twin', disabled: true, lastError: `devices.instances.5.port: expected a port no other device uses, or Modbus units at the same port settings with distinct unit ids (${join(dir, 'absent-tty')} is device good's, and only Modbus units share a port: device twin's framing is lines)` },
        { name: 'own', disabled: true, lastError: 'devices.instances.6.port: expected a port path (profile ublox-gps sets neither port.path nor port.usb)' },
        // a shipped profile not in profilesDir is still found by its name
        { name: 'shipped', disabled: false, connected: false, lastError: expect.stringContaining('absent-meter') },
      ]);
      const table = (await outpost(daemon.socket, ['devices', 'ls'])).stdout;
      expect(table).toMatch(/^broken\s+broken\s+disabled\s/m);
      expect(table).toMatch(/^portless\s+portless\s+disabled\s+-\s/m);
      expect(table).toContain('portless is disabled: devices.instances.1.port: expected a port path');
      expect(daemon.logs).toContainEqual(expect.objectContaining({ level: 50, device: 'missing', msg: 'device disabled' }));
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/^outpost_device_disabled\{device="broken"\} 1$/m);
      expect(metrics).toMatch(/^outpost_device_connected\{device="broken"\} 0$/m);
      expect(metrics).toMatch(/^outpost_device_disabled\{device="good"\} 0$/m);
      expect(JSON.parse((await outpost(daemon.socket, ['status', '--json'])).stdout).services.devices).toMatchObject({ ok: true, configured: 8, disabled: 6 });
    } finally {
      expect(await daemon.stop()).toBe(0);
      await daemon.cleanup();
    }

    // The main config file's own errors stay fatal.
    const configFile = join(dir, 'outpost.yaml');
    writeFileSync(configFile, yaml.dump({
      mqtt: { port: 0 }, http: { port: 0 }, s3: { port: 0 }, log: { format: 'json' },
      devices: { profilesDir, instances: [{ name: 'a', profile: 'portless', port: '/dev/null' }, { name: 'a', profile: 'portless', port: '/dev/null', thing: 'bad/thing' }] },
    }));
    const twice = await run([OUTPOSTD, '--config', configFile, '--data-dir', join(dir, 'data')]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('devices.instances.1.name: expected a unique device name ("a" is used twice)');
    expect(twice.stderr).toContain('devices.instances.1.thing: expected a thing name of 1-128 [a-zA-Z0-9:_-], got "bad/thing"');
  });

  it('runs the daemon with every device disabled when serialport cannot be loaded, saying why', async () => {
    // a loader hook in the daemon's process, standing in for a native binding without a build for this CPU
    const hooks = join(dir, 'no-serialport-hooks.mjs');
    writeFileSync(hooks, `export async function resolve(specifier, context, next) {
  if (specifier === 'serialport') throw new Error('No native build was found for platform=linux arch=mips');
  return next(specifier, context);
}
`);
    const register = join(dir, 'no-serialport.mjs');
    writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    const daemon = await TestDaemon.start({
      env: { NODE_OPTIONS: `--import ${register}` },
      config: { devices: { instances: [{ name: 'gps', profile: 'ublox-gps', port: join(dir, 'absent-tty') }] } },
    });
    try {
      const [gps] = JSON.parse((await outpost(daemon.socket, ['devices', 'ls', '--json'])).stdout).devices;
      expect(gps).toMatchObject({ name: 'gps', disabled: true, connected: false, lastError: expect.stringMatching(/^serial ports unavailable: serialport cannot be loaded: .*No native build was found/) });
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/^outpost_device_disabled\{device="gps"\} 1$/m);
      expect(JSON.parse((await outpost(daemon.socket, ['status', '--json'])).stdout).services.broker.ok).toBe(true);
    } finally {
      expect(await daemon.stop()).toBe(0);
      await daemon.cleanup();
    }
  });

  it('does not load serialport in a daemon without devices; keeps looking for devices that are not there', async () => {
    const mapped = (pid: number) => readFileSync(`/proc/${pid}/maps`, 'utf8').includes('bindings-cpp');
    const idle = await TestDaemon.start({ config: {} });
    const withDevice = await TestDaemon.start({
      config: {
        devices: {
          retryInitialMs: 50,
          instances: [
            { name: 'gps', profile: 'ublox-gps', port: join(dir, 'absent-tty') },
            { name: 'usb-gps', profile: 'ublox-gps' }, // matched by USB id: nothing of the kind is plugged in here
          ],
        },
      },
    });
    try {
      expect(mapped(idle.process.pid!)).toBe(false);
      expect(mapped(withDevice.process.pid!)).toBe(true);
      expect((await outpost(idle.socket, ['devices', 'ls'])).stdout).toBe('no devices configured (devices.instances)\n');
      const listed = JSON.parse((await outpost(withDevice.socket, ['devices', 'ls', '--json'])).stdout).devices;
      expect(listed).toMatchObject([
        { name: 'gps', connected: false, port: join(dir, 'absent-tty'), portDevice: null, lastError: expect.stringContaining('absent-tty') },
        // Without udevadm (minimal systems) the port list is unavailable: said so, rather than crashing serialport.
        { name: 'usb-gps', connected: false, port: 'usb 1546:01a7', portDevice: null, lastError: expect.stringMatching(/^(USB matching needs udevadm|no serial port matches USB)/) },
      ]);
      expect((await outpost(withDevice.socket, ['devices', 'ls'])).stdout).toMatch(new RegExp(`^gps\\s+ublox-gps\\s+no\\s+${join(dir, 'absent-tty')}\\s+-\\s+0\\s+0\\s+0\\s+0\\s+0\\s+-$`, 'm'));
      expect(withDevice.process.exitCode).toBeNull();
    } finally {
      await idle.cleanup();
      await withDevice.cleanup();
    }
  });
});

describe('USB matching through the port list (serialport mock binding: a pty has no USB identity)', () => {
  afterAll(() => MockBinding.reset());

  it('finds the device by vendor, product and serial number wherever it appears, and nothing when it is unplugged', async () => {
    const usb = { baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1, usb: { vendorId: '1546', productId: '01a7' } } as const;
    MockBinding.reset();
    MockBinding.createPort('/dev/ttyUSB0', { vendorId: '0403', productId: '6001' });
    MockBinding.createPort('/dev/ttyACM0', { vendorId: '1546', productId: '01A7' });
    const list = () => MockBinding.list();
    expect(await resolvePortPath(usb, undefined, list)).toBe('/dev/ttyACM0');
    expect(await resolvePortPath({ ...usb, usb: { vendorId: '1546', productId: '01a7', serialNumber: '2' } }, undefined, list)).toBe('/dev/ttyACM0');
    expect(await resolvePortPath({ ...usb, usb: { vendorId: '1546', serialNumber: '9' } }, undefined, list)).toBeUndefined();
    expect(await resolvePortPath(usb, '/dev/override', list)).toBe('/dev/override');

    MockBinding.reset(); // unplugged…
    expect(await resolvePortPath(usb, undefined, list)).toBeUndefined();
    MockBinding.createPort('/dev/ttyACM3', { vendorId: '1546', productId: '01a7' }); // …and back on another tty
    expect(await resolvePortPath(usb, undefined, list)).toBe('/dev/ttyACM3');
  });
});

describe('frame parsers against the specifications', () => {
  it('computes CRC-16/MODBUS (check value of "123456789" is 0x4B37) and frames requests low byte first', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x4b37);
    // Modbus over Serial Line, example: read holding registers 0x006B-0x006D of slave 0x11.
    expect(readRequest(0x11, 0x03, 0x006b, 3).frame.toString('hex')).toBe('1103006b00037687');
  });

  it('takes no Modbus answer for a request the port has not taken yet (a late echo of the same write is noise)', async () => {
    let noise = 0;
    // the port still holds an earlier write: this request waits for it, to its timeout
    const master = new ModbusMaster(() => new Promise(() => undefined), 1);
    const unit = master.unit(200, (bytes) => { noise += bytes; });
    const write = writeRequest(7, 10, [1]);
    const result = unit.transact(write);
    await new Promise((resolve) => setTimeout(resolve, 20));
    master.push(write.frame); // an identical write's echo, late
    await expect(result).rejects.toThrow('port not accepting data: the previous write is still pending');
    expect(noise).toBe(8);
  });

  it('verifies NMEA checksums and reads GGA and RMC', () => {
    const gga = parseNmea('$GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,*76', ['GGA', 'RMC']);
    expect(gga).toMatchObject({ time: '09:27:50.000', fixQuality: 1, satellites: 8, hdop: 1.03, altitude: 61.7, geoidSeparation: 55.2 });
    expect(gga!.latitude).toBeCloseTo(53.3613367, 6);
    expect(gga!.longitude).toBeCloseTo(-6.50562, 6);
    expect(() => parseNmea('$GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,*77', ['GGA'])).toThrow('NMEA checksum mismatch');
    expect(parseNmea('$GPRMC,092750.000,A,5321.6802,N,00630.3372,W,0.02,31.66,280511,,,A*43', ['RMC'])).toMatchObject({ valid: true, speedKnots: 0.02, course: 31.66, date: '2011-05-28' });
    expect(parseNmea('$GPRMC,092750.000,V,,,,,,,290617,,,N*4F', ['RMC'])).toMatchObject({ valid: false, latitude: null, longitude: null, date: '2017-06-29' });
    expect(parseNmea('$GPGSV,3,1,11,10,63,137,17,07,61,098,15,05,59,290,20,08,54,157,30*70', ['GGA', 'RMC'])).toBeUndefined();
  });

  it('never throws anything but a ParseError on hostile input, and never buffers past the frame limit', () => {
    const parsers = [
      (text: string) => parseNmea(text, ['GGA', 'RMC']),
      parseJsonLine,
      csvParser({ type: 'csv', columns: ['a', 'b'], separator: ',' }),
      regexParser({ type: 'regex', pattern: '^(?<a>\\d+),(?<b>\\w+)$' }),
    ];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = '$*,.-0123456789ABCDEFGPRMCNSEW{}[]":\r\n\u0000\u00ff\ufffd';
    let frames = 0;
    let oversized = 0;
    const framer = new LineFramer('\r\n', 82, (frame: Buffer) => {
      frames++;
      expect(frame.length).toBeLessThanOrEqual(82);
      for (const parse of parsers) {
        try { parse(frame.toString('utf8')); } catch (error) { expect(error).toBeInstanceOf(ParseError); }
      }
    }, () => { oversized++; });
    for (let round = 0; round < 1000; round++) {
      const length = Math.floor(random() * 200);
      const chunk = Array.from({ length }, () => (random() < 0.03 ? '\r\n' : alphabet[Math.floor(random() * alphabet.length)])).join('');
      framer.push(Buffer.from(chunk, 'utf8'));
    }
    expect(frames).toBeGreaterThan(50);
    expect(oversized).toBeGreaterThan(0);

    // a 64 KiB line (maxFrameBytes allows it) of objects nested 13,000 deep: JSON.parse takes it, turning it into text must not overflow the stack
    expect(() => parseJsonLine(`${'{"a":'.repeat(13_000)}1${'}'.repeat(13_000)}`)).toThrow(ParseError);
    expect(() => parseJsonLine(`{"a":${'['.repeat(30_000)}${']'.repeat(30_000)}}`)).toThrow('JSON nested too deeply');
  });

  it('keeps a line of exactly maxFrameBytes whose "\\r\\n" is split across two reads', () => {
    const frames: string[] = [];
    let oversized = 0;
    const framer = new LineFramer('\r\n', 10, (frame) => frames.push(frame.toString()), () => { oversized++; });
    framer.push(Buffer.from('0123456789\r'));
    framer.push(Buffer.from('\nabc\r\n'));
    // one byte more is too long, wherever the reads split it
    framer.push(Buffer.from('0123456789X\r'));
    framer.push(Buffer.from('\nlast\r\n'));
    expect(frames).toEqual(['0123456789', 'abc', 'last']);
    expect(oversized).toBe(1);
  });
});
