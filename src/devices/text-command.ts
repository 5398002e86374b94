import type { Command, CommandResult } from './commands.js';
import type { Profile } from './profile.js';
import { PORT_BUSY } from './serial.js';
import { escapeRegex, render } from './template.js';

type CommandSpec = NonNullable<Profile['commands']>;

/**
 * A text command in flight: the rendered line is written, then the frames that follow are offered
 * to `answer` until one matches the ack or error pattern, or the timeout passes.
 */
export class TextCommand {
  readonly done: Promise<CommandResult>;
  private readonly ack: RegExp;
  private readonly error: RegExp | undefined;
  private settle!: (result: CommandResult) => void;
  private settled = false;
  /** On the line: not yet while the port has not taken the previous write. */
  private written = false;

  /** `write`: puts the line on the port once it has taken the previous write, unless `wanted()` says by then that the command was given up. */
  constructor(spec: CommandSpec, readonly command: Command, values: { device: string; thing: string },
    write: (data: Buffer, wanted: () => boolean) => Promise<void>) {
    // ${key} in a pattern matches the key literally.
    const pattern = (source: string) => new RegExp(render(source, { key: escapeRegex(command.key) }));
    this.ack = pattern(spec.ack);
    this.error = spec.error ? pattern(spec.error) : undefined;
    this.done = new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(this.written
        ? { status: 'timeout', error: `no acknowledgement within ${spec.timeoutMs} ms` }
        : { status: 'error', error: PORT_BUSY }), spec.timeoutMs);
      this.settle = (result) => {
        clearTimeout(timer);
        this.settled = true;
        resolve(result);
      };
    });
    const value = typeof command.value === 'string' ? command.value : JSON.stringify(command.value);
    // a line break inside the key or value would end the command's line early: the device would
    // take the rest as a second command of the sender's making, and answer it too
    const broken = [['key', command.key], ['value', value]].find(([, text]) => /[\r\n]/.test(text));
    if (broken) {
      this.settle({ status: 'error', error: `expected a ${broken[0]} without line breaks (CR or LF)`, refused: true });
      return;
    }
    write(Buffer.from(render(spec.template, { key: command.key, value, ...values }), 'utf8'), () => !this.settled).then(
      () => { this.written = true; },
      (error: Error) => this.settle({ status: 'error', error: error.message }),
    );
  }

  /** True when the frame answered this command (and is not a reading). Nothing answers a line not yet written. */
  answer(frame: string): boolean {
    if (!this.written) return false;
    if (this.error?.test(frame)) this.settle({ status: 'error', response: frame, error: 'device answered with an error', refused: true });
    else if (this.ack.test(frame)) this.settle({ status: 'ok', response: frame });
    else return false;
    return true;
  }

  /** The port went away: the command fails now rather than at its timeout. */
  abort(reason: string): void {
    this.settle({ status: 'error', error: reason });
  }
}
