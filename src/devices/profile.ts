import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { z } from 'zod/v3';
import { bool, milliseconds, oneOf, path, positiveInt, range, text } from '../config/fields.js';
import { topicMatches } from '../broker/topic.js';
import { ConfigError, formatConfigIssues } from '../config/load.js';

// A device profile (firmware-configs/devices/*.yaml): how to open the port, cut the byte stream
// into frames, turn frames into readings, and where readings and commands go. docs/devices.md
// documents every key.

const usbId = z.string({ invalid_type_error: 'expected 4 hex digits (e.g. "1546")', required_error: 'expected 4 hex digits (e.g. "1546")' })
  .regex(/^[0-9a-fA-F]{4}$/, { message: 'expected 4 hex digits (e.g. "1546")' }).transform((id) => id.toLowerCase());
const name = text('expected a reading name of letters, digits or "_"').regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, { message: 'expected a reading name of letters, digits or "_"' });
/** A template's `${…}` names must be ones it is given: a typo would otherwise go out as written, e.g. as a topic nobody reads. */
function placeholders<T extends z.ZodType<string>>(schema: T, allowed: string[]) {
  const listed = allowed.map((name) => `\${${name}}`).join(', ');
  return schema.superRefine((template, context) => {
    for (const [placeholder, name] of template.matchAll(/\$\{([^}]*)\}/g)) {
      if (!allowed.includes(name!)) context.addIssue({ code: 'custom', message: `expected only the placeholders ${listed} (${placeholder} is not one)` });
    }
  });
}

const topicTemplate = placeholders(text('expected a topic template (e.g. "devices/${device}/telemetry")')
  .refine((topic) => !/[+#]/.test(topic), { message: 'expected a topic without wildcards' }), ['device', 'thing']);
const regexSource = text('expected a regular expression').refine(compiles, { message: 'expected a valid JavaScript regular expression' });

function compiles(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

const portSchema = z.strictObject({
  /** The device file; a device instance's `port` overrides it. */
  path: path().optional(),
  /** Found by USB identity, whichever tty it gets (serialport's port list). */
  usb: z.strictObject({
    vendorId: usbId,
    productId: usbId.optional(),
    serialNumber: text('expected a serial number').optional(),
  }).optional(),
  baudRate: positiveInt(9600, 'baud rate ≥ 1'),
  dataBits: range('expected 5, 6, 7 or 8', 5, 8).default(8),
  parity: oneOf(['none', 'even', 'odd', 'mark', 'space'], 'expected none, even, odd, mark or space').default('none'),
  stopBits: z.union([z.literal(1), z.literal(1.5), z.literal(2)], { errorMap: () => ({ message: 'expected 1, 1.5 or 2' }) }).default(1),
  /**
   * The adapter hears what it sends (a 2-wire RS-485 transceiver whose receiver stays on): each
   * Modbus request comes back before its answer, and is taken off it. Without it, the echo of a
   * write (06, 16 echo their request) would be taken for the unit's answer, unit or no unit.
   */
  localEcho: bool(false),
}).refine((port) => !(port.path && port.usb), { message: 'expected either path or usb, not both' });

const maxFrameBytes = (fallback: number) => range('expected bytes 1-65536', 1, 65536).default(fallback);

const framingSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('lines'),
    /** Ends a frame; YAML escapes work ("\r\n"). */
    delimiter: text('expected a delimiter of 1-8 characters').max(8, { message: 'expected a delimiter of 1-8 characters' }).default('\n'),
    /** A line longer than this is dropped (counted) up to the next delimiter. */
    maxFrameBytes: maxFrameBytes(1024),
  }),
  z.strictObject({
    type: z.literal('fixed'),
    /** Every frame is exactly this many bytes. */
    length: range('expected bytes 1-65536', 1, 65536),
    /** A partial frame followed by this much silence is dropped, so a lost or stray byte misaligns frames only until the device pauses; 0: never. */
    gapMs: milliseconds(0).default(200),
  }),
  z.strictObject({
    type: z.literal('modbus'),
    /** The slave address (unit id) polled. */
    unitId: range('expected a unit id 1-247', 1, 247),
    /** How often all registers are read. */
    pollIntervalMs: milliseconds().default(1000),
    /** The device's time to answer, besides the request's and the answer's time on the line; past it, a timeout. */
    responseTimeoutMs: milliseconds().default(500),
  }),
], { errorMap: () => ({ message: 'expected type lines, fixed or modbus' }) });

const registerSchema = z.strictObject({
  name,
  /** Register address as in the PDU (0-based). */
  address: range('expected a register address 0-65535', 0, 65535),
  /** holding: function 03 (and 06/16 writes); input: function 04. */
  table: oneOf(['holding', 'input'], 'expected holding or input').default('holding'),
  type: oneOf(['uint16', 'int16', 'uint32', 'int32', 'float32'], 'expected uint16, int16, uint32, int32 or float32').default('uint16'),
  /** For 32-bit types: "big" = high word first (the Modbus norm). */
  wordOrder: oneOf(['big', 'little'], 'expected big or little').default('big'),
  /** reading = raw value × scale. */
  // YAML's .inf would turn every reading into null and every written value into 0
  scale: z.number({ invalid_type_error: 'expected a non-zero finite number' })
    .refine((scale) => scale !== 0 && Number.isFinite(scale), { message: 'expected a non-zero finite number' }).default(1),
  unit: text('expected a unit (e.g. "V")').optional(),
  /** A command (or desired state) may write this register (holding only). */
  writable: bool(false),
});

const parserSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('json') }),
  z.strictObject({
    type: z.literal('csv'),
    columns: z.array(name, { invalid_type_error: 'expected a list of column names', required_error: 'expected a list of column names' }).min(1, { message: 'expected a list of column names' }),
    separator: text('expected a separator character').max(1, { message: 'expected a separator character' }).default(','),
  }),
  z.strictObject({
    type: z.literal('nmea'),
    /** Sentence types turned into readings; others are counted as ignored. */
    sentences: z.array(oneOf(['GGA', 'RMC'], 'expected GGA or RMC')).min(1, { message: 'expected GGA and/or RMC' }).default(['GGA', 'RMC']),
  }),
  z.strictObject({
    type: z.literal('regex'),
    /** Named groups become readings: (?<temperature>-?\d+\.\d+). */
    pattern: regexSource.refine((source) => /\(\?<[A-Za-z_]/.test(source), { message: 'expected at least one named group (?<name>…)' }),
  }),
  z.strictObject({
    type: z.literal('modbus'),
    registers: z.array(registerSchema, { invalid_type_error: 'expected a list of registers' }).min(1, { message: 'expected at least one register' }),
  }),
], { errorMap: () => ({ message: 'expected type json, csv, nmea, regex or modbus' }) });

export const profileSchema = z.strictObject({
  /** One line about the device, shown by `outpost devices ls --json`. */
  description: text('expected a description').optional(),
  port: portSchema.default({}),
  framing: framingSchema,
  parser: parserSchema,
  telemetry: z.strictObject({
    /** Each reading is published here as a JSON object; ${device} and ${thing} are filled in. */
    topic: topicTemplate.default('devices/${device}/telemetry'),
    enabled: bool(true),
    qos: range('expected 0 or 1', 0, 1).default(0),
  }).default({}),
  shadow: z.strictObject({
    /** Readings update the instance's thing shadow `reported` (when the instance names a thing). */
    reported: bool(true),
    /** At most one shadow update per this interval; the newest values are sent when it has passed. */
    minIntervalMs: milliseconds(0).default(5000),
    /** A numeric reading is reported only when it moved by more than this since last reported. */
    changeThreshold: z.number({ invalid_type_error: 'expected a number ≥ 0' }).min(0, { message: 'expected a number ≥ 0' }).default(0),
    /** `desired` deltas become commands. */
    desired: bool(true),
  }).default({}),
  commands: z.strictObject({
    /** JSON objects {"key": value, …} published here are written to the device, key by key. */
    topic: topicTemplate.default('devices/${device}/commands'),
    /** One result per key: {"key", "value", "status": "ok"|"error"|"timeout", "response"?, "clientToken"?}. */
    replyTopic: topicTemplate.default('devices/${device}/commands/reply'),
    /** What is written per key: ${key}, ${value}, ${device}, ${thing}. Not used by Modbus (register writes). */
    template: placeholders(text('expected a command template'), ['key', 'value', 'device', 'thing']).default('${key}=${value}\n'),
    /** A frame matching this acknowledges the command (${key} is filled in); not used by Modbus (the echo is the ack). */
    ack: placeholders(text('expected an ack pattern'), ['key']).default('^OK'),
    /** A frame matching this fails the command. */
    error: placeholders(text('expected an error pattern'), ['key']).optional(),
    timeoutMs: milliseconds().default(2000),
  }).optional(),
}).superRefine((profile, context) => {
  const modbusFraming = profile.framing.type === 'modbus';
  const modbusParser = profile.parser.type === 'modbus';
  if (modbusFraming !== modbusParser) {
    context.addIssue({ code: 'custom', path: ['parser', 'type'], message: 'expected framing type modbus and parser type modbus together' });
  }
  if (profile.parser.type === 'nmea' && profile.framing.type !== 'lines') {
    context.addIssue({ code: 'custom', path: ['framing', 'type'], message: 'expected lines framing for NMEA sentences' });
  }
  if (profile.parser.type === 'modbus') {
    profile.parser.registers.forEach((register, index) => {
      if (register.writable && register.table !== 'holding') {
        context.addIssue({ code: 'custom', path: ['parser', 'registers', index, 'writable'], message: 'expected writable only on holding registers' });
      }
      // a 32-bit value takes the register after its address too, and 65535 is the last one
      if (register.type.endsWith('32') && register.address > 65534) {
        context.addIssue({ code: 'custom', path: ['parser', 'registers', index, 'address'], message: `expected an address 0-65534 for a ${register.type} (two registers)` });
      }
    });
    uniqueNames(profile.parser.registers.map((register) => register.name), ['parser', 'registers'], 'name', 'register name', context);
  }
  if (profile.parser.type === 'csv') uniqueNames(profile.parser.columns, ['parser', 'columns'], undefined, 'column name', context);
  if (profile.commands) {
    // what the device service publishes where it takes commands would come back to it as commands, without end
    const sample = (template: string) => template.replaceAll('${device}', 'device').replaceAll('${thing}', 'thing');
    const published: Array<[string[], string]> = [[['commands', 'replyTopic'], profile.commands.replyTopic], [['telemetry', 'topic'], profile.telemetry.topic]];
    for (const [path, template] of published) {
      if (topicMatches(sample(profile.commands.topic), sample(template))) {
        context.addIssue({ code: 'custom', path, message: 'expected a topic outside commands.topic: what is published there would be taken for commands' });
      }
    }
  }
  for (const key of ['ack', 'error'] as const) {
    const source = profile.commands?.[key];
    if (source !== undefined && !compiles(source.replaceAll('${key}', 'key'))) {
      context.addIssue({ code: 'custom', path: ['commands', key], message: 'expected a valid JavaScript regular expression' });
    }
  }
});

/** Reading names must differ: a second one of a name would overwrite the first's value in every reading. */
function uniqueNames(names: string[], path: Array<string | number>, field: string | undefined, what: string, context: z.RefinementCtx): void {
  const seen = new Set<string>();
  names.forEach((name, index) => {
    if (seen.has(name)) context.addIssue({ code: 'custom', path: [...path, index, ...(field ? [field] : [])], message: `expected a unique ${what} ("${name}" is used twice)` });
    seen.add(name);
  });
}

export type Profile = z.infer<typeof profileSchema>;
export type ModbusRegister = z.infer<typeof registerSchema>;
export type Framing = Profile['framing'];
export type ParserSpec = Profile['parser'];

/** Reads and validates a profile file; a ConfigError names the file and every bad key with its reason. */
export function loadProfile(file: string): Profile {
  let input: unknown;
  try {
    input = yaml.load(readFileSync(file, 'utf8'), { filename: file }) ?? {};
  } catch (error) {
    throw new ConfigError(`${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such profile file' : `invalid YAML: ${(error as Error).message}`}`);
  }
  const result = profileSchema.safeParse(input);
  if (result.success) return result.data;
  throw new ConfigError(`${file}: invalid device profile:\n${formatConfigIssues(result.error.issues, input)}`);
}
