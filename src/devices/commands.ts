import type { ReadingValue } from './parsers/reading.js';

/** One key to set on the device, from a command message or a shadow `desired` delta. */
export interface Command {
  key: string;
  value: unknown;
  source: 'topic' | 'shadow';
  /** Echoed in the reply, as shadow requests echo theirs. */
  clientToken?: string;
}

export interface CommandResult {
  status: 'ok' | 'error' | 'timeout';
  /** The device's answer (the ack or error frame). */
  response?: string;
  error?: string;
}

/**
 * A device's commands, run one at a time (each waits for its ack or timeout before the next is
 * written), at most `capacity` waiting: beyond that a command is answered at once with an error.
 */
export class CommandQueue {
  private readonly waiting: Command[] = [];
  private running: Command | undefined;

  constructor(
    private readonly capacity: number,
    private readonly execute: (command: Command) => Promise<CommandResult>,
    private readonly done: (command: Command, result: CommandResult) => void,
  ) {}

  add(command: Command): void {
    // A shadow delta repeats while desired and reported differ: one pending command per key and value is enough.
    if (command.source === 'shadow' && [this.running, ...this.waiting].some((queued) => queued && sameCommand(queued, command))) return;
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
      this.done(command, result);
    }
  }
}

function sameCommand(a: Command, b: Command): boolean {
  return a.key === b.key && JSON.stringify(a.value) === JSON.stringify(b.value);
}

/** Top-level keys of a command object with values a device line can carry. */
export function commandsOf(state: Record<string, unknown>, source: Command['source'], clientToken?: string): Command[] {
  return Object.entries(state)
    .filter(([key]) => key !== 'clientToken')
    .map(([key, value]) => ({ key, value: value as ReadingValue, source, clientToken }));
}
