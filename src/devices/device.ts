import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { LocalBus } from '../bus.js';
import type { DeviceInstanceConfig } from './config.js';
import { CommandQueue, commandsOf, desiredCommands, type Command, type CommandResult } from './commands.js';
import { FixedFramer, LineFramer } from './framing.js';
import type { DeviceMetrics } from './metrics.js';
import { NoAnswer, type ModbusMaster, type ModbusUnit } from './modbus-master.js';
import { textParser, type TextParser } from './parsers/index.js';
import { decodeBlock, encodeValue, ILLEGAL_DATA_ADDRESS, ModbusException, pollPlan, READ_INPUT, readRequest, withoutGaps, writeRequest, type PollBlock } from './parsers/modbus.js';
import { ParseError, type Reading } from './parsers/reading.js';
import { configuredPort } from './port.js';
import type { Profile } from './profile.js';
import { ReportedThrottle } from './reported.js';
import type { SerialLine } from './serial-line.js';
import { DeviceStats } from './stats.js';
import { render } from './template.js';
import { TextCommand } from './text-command.js';

/**
 * Modbus exceptions that refuse the request itself (Modbus Application Protocol §7: illegal
 * function, data address, data value): the same write gets the same answer. Busy or failed
 * devices (4, 5, 6) may take it later.
 */
const REFUSALS = new Set([1, ILLEGAL_DATA_ADDRESS, 3]);

/** A poll read the unit did not answer at all. */
const UNANSWERED = Symbol('unanswered');

/** Readings handed to the bus and not yet delivered; beyond this a reading is dropped (counted), not queued. */
const MAX_PUBLISHES_IN_FLIGHT = 64;

export interface DeviceOptions {
  instance: DeviceInstanceConfig;
  profile: Profile;
  /** The port, this device's alone or shared with the other Modbus units of its RS-485 line. */
  line: SerialLine;
  /** The line's Modbus master, for a Modbus device. */
  modbus: ModbusMaster | undefined;
  bus: LocalBus;
  log: Logger;
  metrics: DeviceMetrics;
  commandQueueLength: number;
}

/** One row of `outpost devices ls` / `GET /v1/devices`. */
export interface DeviceStatus {
  name: string;
  profile: string;
  description: string | null;
  thing: string | null;
  /** The profile could not be used: the device is not run, `lastError` says why. */
  disabled: boolean;
  connected: boolean;
  /**
   * The port as configured: the instance's or the profile's path, or the profile's USB match (`usb
   * 1546:01a7`); null for a disabled device that names none of its own and whose profile is unknown.
   */
  port: string | null;
  /** The device file the port is open on, symlinks (/dev/serial/by-id/…) resolved; null while not connected. */
  portDevice: string | null;
  /** A Modbus device's address on its line (the instance's or the profile's); null for other devices. */
  unitId: number | null;
  lastFrameAt: string | null;
  framesPerSecond: number;
  frames: number;
  parseErrors: number;
  oversizedFrames: number;
  ignoredFrames: number;
  droppedReadings: number;
  commandsSent: number;
  commandsFailed: number;
  commandsQueued: number;
  reconnects: number;
  lastError: string | null;
}

/**
 * One configured serial device on its line (which finds and opens the port): turns frames into
 * readings for the telemetry topic and the shadow, and writes commands back. Nothing the device
 * sends can throw past `onFrame`: bad frames are counted and skipped.
 */
export class Device {
  readonly name: string;
  private readonly profile: Profile;
  private readonly thing: string | undefined;
  private readonly line: SerialLine;
  private stopped = false;
  /** After the port is gone (`reason`): a partial frame is dropped, a Modbus request in flight fails. */
  private readonly resetFraming: (reason: string) => void;
  private readonly parse: TextParser | undefined;
  private readonly modbus: ModbusUnit | undefined;
  /** The reads of the register map; a block the device refused for its gaps is replaced by its gap-free runs. */
  private pollBlocks: PollBlock[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  /** Bumped on every connection: a poll cycle of an earlier connection that finishes late does not start a second loop. */
  private pollGeneration = 0;
  private readonly commands: CommandQueue;
  private readonly reported: ReportedThrottle | undefined;
  private textCommand: TextCommand | undefined;
  private unsubscribers: Array<() => Promise<void>> = [];
  /** Our shadow requests' clientTokens start with this, to tell their answers from other clients'. */
  private readonly tokenPrefix: string;
  /** The clientToken of our pending shadow get. */
  private shadowToken: string | undefined;
  private shadowRequests = 0;
  /** The newest shadow version whose desired state was applied, or read with none to apply (applyDesired). */
  private desiredVersion: number | undefined;
  private publishesInFlight = 0;
  private readonly stats: DeviceStats;

  constructor(private readonly options: DeviceOptions) {
    this.name = options.instance.name;
    this.profile = options.profile;
    this.thing = options.instance.thing;
    this.line = options.line;
    this.stats = new DeviceStats(this.name, options.metrics);
    options.metrics.add(this.name, this.profile.commands !== undefined);
    this.tokenPrefix = `outpost-device-${tokenLabel(this.name)}:`;
    const { framing, parser } = this.profile;
    if (framing.type === 'modbus') {
      this.modbus = options.modbus!.unit(framing.responseTimeoutMs, (bytes) => this.stats.parseError(`${bytes} bytes of noise between Modbus answers`));
      if (parser.type === 'modbus') this.pollBlocks = pollPlan(parser.registers);
      this.resetFraming = (reason) => this.modbus!.abort(reason);
    } else {
      const framer = framing.type === 'lines'
        ? new LineFramer(framing.delimiter, framing.maxFrameBytes, (frame) => this.onFrame(frame), () => this.stats.oversized())
        : new FixedFramer(framing.length, framing.gapMs, (frame) => this.onFrame(frame),
          (bytes) => this.stats.parseError(`partial frame of ${bytes} bytes dropped after ${framing.gapMs} ms of silence`));
      // a text device has its port to itself (a Modbus line's bytes go to the line's master)
      this.line.onData = (chunk) => framer.push(chunk);
      this.resetFraming = () => framer.reset();
      // The profile schema admits the modbus parser only with modbus framing.
      this.parse = textParser(parser as Exclude<typeof parser, { type: 'modbus' }>);
    }
    this.commands = new CommandQueue(options.commandQueueLength, (command) => this.execute(command), (command, result) => this.commandDone(command, result));
    if (this.thing && this.profile.shadow.reported) {
      this.reported = new ReportedThrottle(this.profile.shadow.minIntervalMs, this.profile.shadow.changeThreshold, (state) => this.updateShadow(state));
    }
    this.line.attach(this.name, {
      connected: () => this.onConnected(),
      lost: (reason, error) => this.onLost(reason, error),
      unavailable: (error) => this.stats.portError(error.message),
    });
  }

  async start(): Promise<void> {
    const { commands, shadow } = this.profile;
    const { bus } = this.options;
    if (commands) {
      this.unsubscribers.push(await bus.subscribe(this.topic(commands.topic), (message) => this.onCommandMessage(message.payload)));
    }
    if (this.thing) {
      this.unsubscribers.push(await bus.subscribe(`$aws/things/${this.thing}/shadow/update/rejected`, (message) => this.onShadowRejected(message.payload)));
      this.unsubscribers.push(await bus.subscribe(`$aws/things/${this.thing}/shadow/delete/accepted`, () => this.onShadowDeleted()));
    }
    if (commands && this.thing && shadow.desired) {
      this.unsubscribers.push(await bus.subscribe(`$aws/things/${this.thing}/shadow/update/delta`, (message) => this.onDelta(message.payload)));
      this.unsubscribers.push(await bus.subscribe(`$aws/things/${this.thing}/shadow/get/accepted`, (message) => this.onShadowDocument(message.payload)));
    }
  }

  /** Before its line is closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    this.reported?.stop();
    this.resetFraming('stopping');
    this.textCommand?.abort('stopping');
    for (const unsubscribe of this.unsubscribers) await unsubscribe();
    this.unsubscribers = [];
  }

  status(): DeviceStatus {
    const { stats } = this;
    return {
      name: this.name,
      profile: this.options.instance.profile,
      description: this.profile.description ?? null,
      thing: this.thing ?? null,
      disabled: false,
      connected: this.line.connected,
      port: configuredPort(this.profile.port, this.options.instance.port),
      portDevice: this.line.portDevice ?? null,
      unitId: this.profile.framing.type === 'modbus' ? this.profile.framing.unitId : null,
      lastFrameAt: stats.lastFrameAt ? new Date(stats.lastFrameAt).toISOString() : null,
      framesPerSecond: stats.framesPerSecond(),
      frames: stats.frames,
      parseErrors: stats.parseErrors,
      oversizedFrames: stats.oversizedFrames,
      ignoredFrames: stats.ignoredFrames,
      droppedReadings: stats.droppedReadings,
      commandsSent: stats.commandsSent,
      commandsFailed: stats.commandsFailed,
      commandsQueued: this.commands.length,
      reconnects: stats.reconnects,
      lastError: stats.lastError,
    };
  }

  get connected(): boolean {
    return this.line.connected;
  }

  // --- the line: the port opened, lost ------------------------------------------------------------

  private onConnected(): void {
    if (this.stopped) return;
    this.stats.connected(true);
    if (this.modbus) this.poll();
    this.commands.forgetApplied();
    this.catchUpDesired();
  }

  private onLost(reason: string, error: Error): void {
    this.stats.portError(`lost: ${error.message}`);
    clearTimeout(this.pollTimer);
    this.resetFraming(reason);
    this.textCommand?.abort(reason);
    this.stats.connected(false);
    this.stats.reconnects++;
  }

  // --- reading: frames → readings → telemetry topic and shadow --------------------------------

  private onFrame(frame: Buffer): void {
    const text = frame.toString('utf8').replace(/\r$/, '');
    if (text.trim() === '') return;
    this.stats.frame();
    if (this.textCommand?.answer(text)) return;
    let reading: Reading | undefined;
    try {
      reading = this.parse!(text);
    } catch (error) {
      // A parser bug must not take the daemon down with it either: the frame is counted and skipped.
      if (!(error instanceof ParseError)) this.options.log.error({ device: this.name, err: error }, 'frame parser failed');
      this.stats.parseError(error instanceof ParseError ? error.message : `internal: ${(error as Error).message}`);
      return;
    }
    if (reading) this.emit(reading);
    else this.stats.ignoredFrames++;
  }

  private emit(reading: Reading): void {
    // a poll cycle or the port's last bytes may end after stop(): the broker may be gone
    if (this.stopped) return;
    const { telemetry } = this.profile;
    if (telemetry.enabled) {
      if (this.publishesInFlight >= MAX_PUBLISHES_IN_FLIGHT) {
        this.stats.droppedReadings++;
      } else {
        this.publishesInFlight++;
        // the device's own timestamp (when it measured) is its data: ours only stands in for a missing one
        const payload = JSON.stringify({ timestamp: Date.now(), ...reading });
        this.options.bus.publish({ topic: this.topic(telemetry.topic), payload, qos: telemetry.qos as 0 | 1 })
          .catch((error: Error) => this.options.log.warn({ device: this.name, err: error.message }, 'telemetry publish failed'))
          .finally(() => this.publishesInFlight--);
      }
    }
    this.commands.observe(reading);
    this.reported?.offer(reading);
  }

  private async updateShadow(state: Reading): Promise<void> {
    const payload = JSON.stringify({ state: { reported: state }, clientToken: this.nextToken() });
    try {
      // awaited inside: a bus that is stopping throws at once
      await this.options.bus.publish({ topic: `$aws/things/${this.thing}/shadow/update`, payload, qos: 1 });
    } catch (error) {
      this.options.log.warn({ device: this.name, err: (error as Error).message }, 'shadow update failed');
      // as for a refused one (onShadowRejected)
      this.reported?.forgetReported();
    }
  }

  // --- Modbus: poll the register map -----------------------------------------------------------

  private poll(): void {
    const { framing } = this.profile;
    if (framing.type !== 'modbus') return;
    const generation = ++this.pollGeneration;
    const current = () => this.line.connected && !this.stopped && generation === this.pollGeneration;
    const cycle = async () => {
      const reading: Reading = {};
      for (const block of [...this.pollBlocks]) {
        const part = await this.readBlock(framing.unitId, block);
        // a unit that did not answer is likely gone from the line (unplugged, powered off): the rest
        // of its map waits for the next poll rather than hold a shared line for a timeout each
        if (part === UNANSWERED) break;
        if (part) Object.assign(reading, part);
      }
      if (Object.keys(reading).length) this.emit(reading);
    };
    const next = () => {
      if (!current()) return;
      void cycle().finally(() => {
        if (current()) this.pollTimer = setTimeout(next, framing.pollIntervalMs);
      });
    };
    next();
  }

  private async readBlock(unitId: number, block: PollBlock): Promise<Reading | typeof UNANSWERED | undefined> {
    try {
      const data = await this.modbus!.transact(readRequest(unitId, block.functionCode, block.address, block.count));
      this.stats.frame();
      return decodeBlock(block, data);
    } catch (error) {
      // Many devices refuse a read that spans addresses they do not have (Modbus Application
      // Protocol §6.3/§6.4: exception 2): such a block is read without its gaps from then on.
      const runs = withoutGaps(block);
      if (error instanceof ModbusException && error.code === ILLEGAL_DATA_ADDRESS && runs.length > 1) {
        this.options.log.info({ device: this.name, address: block.address, count: block.count, reads: runs.length }, 'Modbus read across a gap refused; reading the registers without the gaps');
        // a cycle of an earlier connection that ended late may have replaced it already
        const index = this.pollBlocks.indexOf(block);
        if (index >= 0) this.pollBlocks.splice(index, 1, ...runs);
        const reading: Reading = {};
        for (const run of runs) {
          const part = await this.readBlock(unitId, run);
          if (part === UNANSWERED) return UNANSWERED;
          Object.assign(reading, part);
        }
        return reading;
      }
      // A read cut short by the port going away is not the device's fault.
      if (this.line.connected) this.stats.parseError(`${(error as Error).message} reading ${registersRead(block)}`);
      return error instanceof NoAnswer ? UNANSWERED : undefined;
    }
  }

  // --- commands: command topic and shadow deltas → the port → reply topic and `reported` ---------

  private onCommandMessage(payload: Buffer): void {
    const message = parseObject(payload);
    if (!message) {
      this.reply({ status: 'error', error: 'expected a JSON object of keys to set' });
      return;
    }
    const token = typeof message.clientToken === 'string' ? message.clientToken.slice(0, 64) : undefined;
    this.enqueue(commandsOf(message, 'topic', token), token);
  }

  /** All keys of one message or delta, or none with one error reply: a hostile message cannot flood the reply topic. */
  private enqueue(commands: Command[], clientToken?: string): void {
    const capacity = this.options.commandQueueLength;
    if (!commands.length) this.reply({ status: 'error', error: 'expected at least one key to set', clientToken });
    else if (commands.length > capacity) this.reply({ status: 'error', error: `expected at most ${capacity} keys, got ${commands.length}`, clientToken });
    else for (const command of commands) this.commands.add(command);
  }

  /**
   * Desired changes made while the device was away were announced (`/delta`) when nobody could
   * write them: on every (re)connect the shadow is read and its delta applied.
   */
  private catchUpDesired(): void {
    if (!this.profile.commands || !this.thing || !this.profile.shadow.desired) return;
    this.shadowToken = this.nextToken();
    this.options.bus.publish({ topic: `$aws/things/${this.thing}/shadow/get`, payload: JSON.stringify({ clientToken: this.shadowToken }), qos: 1 })
      .catch((error: Error) => this.options.log.warn({ device: this.name, err: error.message }, 'shadow get failed'));
  }

  /** The answer to our own get only (other clients' gets are answered on the same topic). */
  private onShadowDocument(payload: Buffer): void {
    const document = parseObject(payload) as { clientToken?: unknown; version?: unknown; state?: { delta?: unknown }; metadata?: { desired?: unknown } } | undefined;
    if (!document || document.clientToken !== this.shadowToken) return;
    this.shadowToken = undefined;
    this.applyDesired(document.state?.delta, document.metadata?.desired, document.version);
  }

  private nextToken(): string {
    return `${this.tokenPrefix}${(++this.shadowRequests).toString(36)}`;
  }

  /** Our update refused (document too large, too deep): shown as the device's last error. */
  private onShadowRejected(payload: Buffer): void {
    const answer = parseObject(payload);
    if (typeof answer?.clientToken !== 'string' || !answer.clientToken.startsWith(this.tokenPrefix)) return;
    this.stats.error(`shadow update rejected: ${String(answer.message)} (${String(answer.code)})`);
    this.options.log.warn({ device: this.name, thing: this.thing, code: answer.code, reason: answer.message }, 'shadow update rejected');
    // its values are not in the shadow: the next readings report them again, steady ones too
    this.reported?.forgetReported();
  }

  /**
   * What was reported and applied went with the shadow: the next readings report every value again
   * (steady ones too), a desired value is written again, and the new shadow's versions may start over.
   */
  private onShadowDeleted(): void {
    this.desiredVersion = undefined;
    this.reported?.forgetReported();
    this.commands.forgetApplied();
  }

  private onDelta(payload: Buffer): void {
    const delta = parseObject(payload) as { version?: unknown; state?: unknown; metadata?: unknown } | undefined;
    this.applyDesired(delta?.state, delta?.metadata, delta?.version);
  }

  /**
   * A desired state older than one already seen is dropped, as AWS advises devices to do with the
   * shadow's version: a get answered before an update but arriving after its delta must not undo it.
   * The same version again is applied (the catch-up after a reconnect); a deleted shadow's versions
   * may start again, so its deletion forgets the last one.
   */
  private applyDesired(state: unknown, metadata: unknown, version: unknown): void {
    if (typeof version === 'number') {
      if (this.desiredVersion !== undefined && version < this.desiredVersion) {
        this.options.log.info({ device: this.name, thing: this.thing, version, applied: this.desiredVersion }, 'older desired state dropped');
        return;
      }
      // also a shadow read with no delta: a delta older than it is stale too
      this.desiredVersion = version;
    }
    if (typeof state !== 'object' || state === null || Array.isArray(state)) return;
    this.enqueue(desiredCommands(state as Record<string, unknown>, metadata));
  }

  private async execute(command: Command): Promise<CommandResult> {
    if (!this.line.connected) return { status: 'error', error: 'device not connected' };
    const { parser, framing } = this.profile;
    if (framing.type === 'modbus' && parser.type === 'modbus') {
      const register = parser.registers.find((candidate) => candidate.name === command.key && candidate.writable);
      if (!register) return { status: 'error', error: `no writable register "${command.key}"`, refused: true };
      let words: number[];
      try {
        words = encodeValue(register, command.value);
      } catch (error) {
        return { status: 'error', error: (error as Error).message, refused: true };
      }
      this.stats.commandsSent++;
      try {
        await this.modbus!.transact(writeRequest(framing.unitId, register.address, words));
        return { status: 'ok' };
      } catch (error) {
        const { message } = error as Error;
        if (error instanceof NoAnswer) return { status: 'timeout', error: message };
        return { status: 'error', error: message, refused: error instanceof ModbusException && REFUSALS.has(error.code) };
      }
    }
    return this.writeTextCommand(command);
  }

  private async writeTextCommand(command: Command): Promise<CommandResult> {
    const write = async (data: Buffer, wanted: () => boolean) => {
      await this.line.write(data, wanted);
      if (wanted()) this.stats.commandsSent++;
    };
    const textCommand = new TextCommand(this.profile.commands!, command, { device: this.name, thing: this.thing ?? '' }, write);
    this.textCommand = textCommand;
    try {
      return await textCommand.done;
    } finally {
      this.textCommand = undefined;
    }
  }

  /** `refused` is the queue's to know: the reply keeps its documented fields. */
  private commandDone(command: Command, { refused, ...result }: CommandResult): void {
    this.stats.commandDone(result.status);
    this.options.log.info({ device: this.name, key: command.key, source: command.source, ...result }, 'device command');
    this.reply({ key: command.key, value: command.value, source: command.source, ...result, clientToken: command.clientToken });
    if (result.status !== 'ok' || !this.thing) return;
    const confirmed = { [command.key]: command.value as Reading[string] };
    if (this.reported) this.reported.confirm(confirmed);
    else void this.updateShadow(confirmed);
  }

  private reply(body: Record<string, unknown>): void {
    const spec = this.profile.commands;
    // commands still queued at stop() end after it, when the broker may be gone
    if (!spec || this.stopped) return;
    this.options.bus.publish({ topic: this.topic(spec.replyTopic), payload: JSON.stringify({ device: this.name, ...body }), qos: 1 })
      .catch((error: Error) => this.options.log.warn({ device: this.name, err: error.message }, 'command reply failed'));
  }

  private topic(template: string): string {
    return render(template, { device: this.name, thing: this.thing ?? '' });
  }
}

/**
 * The device's name in its shadow clientTokens, which AWS limits to 64 bytes: a name of up to 36
 * characters as it is, a longer one cut to 27 and told apart by a hash of the whole. With the
 * prefix, the ':' (never in a name) and a base-36 counter up to 2^53, a token stays within 63 bytes.
 */
function tokenLabel(name: string): string {
  if (name.length <= 36) return name;
  return `${name.slice(0, 27)}~${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/** Which read failed, for a map of several: `input registers 0-5`, `holding register 24`. */
function registersRead(block: PollBlock): string {
  const table = block.functionCode === READ_INPUT ? 'input' : 'holding';
  return block.count === 1 ? `${table} register ${block.address}` : `${table} registers ${block.address}-${block.address + block.count - 1}`;
}

/** A JSON object payload, else undefined. */
function parseObject(payload: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
