/** One key to set on the device, from a command message or a shadow `desired` delta. */
export interface Command {
  key: string;
  value: unknown;
  source: 'topic' | 'shadow';
  /** Echoed in the reply, as shadow requests echo theirs. */
  clientToken?: string;
  /** A shadow command: the desired key's metadata (its timestamps), which a client setting it again renews. */
  desiredMetadata?: string;
}

export interface CommandResult {
  status: 'ok' | 'error' | 'timeout';
  /** The device's answer (the ack or error frame). */
  response?: string;
  error?: string;
  /** The device or the profile refused the value (not a failure on the way): the same value again gets the same answer. Not in the reply. */
  refused?: boolean;
}

/** Keys whose last written value is remembered; the oldest is forgotten beyond this. */
const MAX_APPLIED_KEYS = 256;

/**
 * A device's commands, run one at a time (each waits for its ack or timeout before the next is
 * written), at most `capacity` waiting: beyond that a command is answered at once with an error.
 */
export class CommandQueue {
  private readonly waiting: Command[] = [];
  private running: Command | undefined;
  /**
   * The value each key was last set to with success on this connection, so a repeated delta is not
   * written again; and the first value the device's readings showed for the key after it (JSON).
   */
  private readonly applied = new Map<string, { value: string; readBack?: string }>();
  /** Desired values the device refused on this connection, with the metadata they were set with. */
  private readonly refused = new Map<string, { value: string; desiredMetadata?: string }>();

  constructor(
    private readonly capacity: number,
    private readonly execute: (command: Command) => Promise<CommandResult>,
    private readonly done: (command: Command, result: CommandResult) => void,
  ) {}

  add(command: Command): void {
    // A shadow delta repeats while desired and reported differ (each update of the shadow announces it
    // again): a value already set, or already on its way, is not written twice.
    if (command.source === 'shadow') {
      if (this.applied.get(command.key)?.value === JSON.stringify(command.value)) return;
      // and a value the device refused is not offered again on every update of the shadow, only once set again
      const refused = this.refused.get(command.key);
      if (refused && refused.value === JSON.stringify(command.value) && refused.desiredMetadata === command.desiredMetadata) return;
      if ([this.running, ...this.waiting].some((queued) => queued && sameCommand(queued, command))) return;
    }
    if (this.waiting.length >= this.capacity) {
      this.done(command, { status: 'error', error: `command queue full (${this.capacity} waiting)` });
      return;
    }
    this.waiting.push(command);
    if (!this.running) void this.runNext();
  }

  get length(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  private async runNext(): Promise<void> {
    while ((this.running = this.waiting.shift())) {
      const command = this.running;
      let result: CommandResult;
      try {
        result = await this.execute(command);
      } catch (error) {
        result = { status: 'error', error: (error as Error).message };
      }
      if (result.status === 'ok') this.remember(command);
      else if (result.refused && command.source === 'shadow') this.rememberRefused(command);
      this.done(command, result);
    }
  }

  /** A device that was away may have lost its settings: after a reconnect every desired value is written again. */
  forgetApplied(): void {
    this.applied.clear();
    this.refused.clear();
  }

  /**
   * A device can lose a setting without leaving the port (an RS-485 meter's power cut resets its
   * registers): once its readings of a key move away from what they showed after the write, the
   * next delta for it is written again. Compared with the read-back, not the value written, as a
   * device may read back a value written differently (float32 0.1, a scaled integer, "ON" as "on"),
   * which must not rewrite it on every reading.
   */
  observe(reading: Record<string, unknown>): void {
    for (const [key, value] of Object.entries(reading)) {
      const entry = this.applied.get(key);
      if (!entry) continue;
      const json = JSON.stringify(value);
      if (entry.readBack === undefined) entry.readBack = json;
      else if (entry.readBack !== json) this.applied.delete(key);
    }
  }

  private rememberRefused(command: Command): void {
    this.refused.delete(command.key);
    this.refused.set(command.key, { value: JSON.stringify(command.value), desiredMetadata: command.desiredMetadata });
    if (this.refused.size > MAX_APPLIED_KEYS) this.refused.delete(this.refused.keys().next().value!);
  }

  private remember(command: Command): void {
    this.refused.delete(command.key);
    this.applied.delete(command.key);
    this.applied.set(command.key, { value: JSON.stringify(command.value) });
    if (this.applied.size > MAX_APPLIED_KEYS) this.applied.delete(this.applied.keys().next().value!);
  }
}

function sameCommand(a: Command, b: Command): boolean {
  return a.key === b.key && JSON.stringify(a.value) === JSON.stringify(b.value);
}

/** One command per top-level key of a command message or delta (`clientToken` is the message's, not a key to set). */
export function commandsOf(state: Record<string, unknown>, source: Command['source'], clientToken?: string): Command[] {
  return Object.entries(state)
    .filter(([key]) => key !== 'clientToken')
    .map(([key, value]) => ({ key, value, source, clientToken }));
}

/** One command per key of a desired state, with the key's metadata (`desiredMetadata`: `{key: {timestamp}}` of the delta or `metadata.desired`). */
export function desiredCommands(state: Record<string, unknown>, metadata: unknown): Command[] {
  const stamps = typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>) : {};
  return commandsOf(state, 'shadow').map((command) => ({ ...command, desiredMetadata: JSON.stringify(stamps[command.key]) }));
}
