import { randomUUID } from 'node:crypto';
import { MAX_TIMER_MS } from '../steady-clock.js';
import type { Logger } from 'pino';

/** A Schedule event of a template: EventBridge's `rate(...)` or `cron(...)`, and the optional constant Input. */
export interface ScheduleSpec {
  /** `<function>-<event key>`, the rule name in the event's `resources`. */
  rule: string;
  expression: string;
  /** JSON text sent instead of the Scheduled Event (the target's Input), when set. */
  input?: string;
}

export type ParsedSchedule =
  | { kind: 'rate'; ms: number }
  /** `pattern` is node-cron's six fields (seconds first, always 0); `years` is EventBridge's year field. */
  | { kind: 'cron'; pattern: string; years: string };

const RATE_UNITS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/**
 * Parses an EventBridge schedule expression; throws an Error naming the expression otherwise.
 * `rate(1 minute)` / `rate(5 minutes)` (value 1 takes the singular unit, others the plural);
 * `cron(minutes hours day-of-month month day-of-week year)` in UTC, one of the day fields `?`.
 * Whether node-cron can express the translated pattern is checked by `checkCron`.
 */
export function parseSchedule(expression: string): ParsedSchedule {
  const bad = (why: string) => new Error(`${expression}: ${why}`);
  const rate = /^rate\((.*)\)$/.exec(expression);
  if (rate) {
    const match = /^(\d+) (minute|minutes|hour|hours|day|days)$/.exec(rate[1]);
    if (!match) throw bad('expected rate(VALUE UNIT) with a positive whole VALUE and UNIT minute(s), hour(s) or day(s)');
    const value = Number(match[1]);
    const unit = match[2];
    if (value < 1) throw bad('the value must be a positive whole number');
    if (value === 1 && unit.endsWith('s')) throw bad(`a value of 1 takes the singular unit: rate(1 ${unit.slice(0, -1)})`);
    if (value > 1 && !unit.endsWith('s')) throw bad(`a value above 1 takes the plural unit: rate(${value} ${unit}s)`);
    return { kind: 'rate', ms: value * RATE_UNITS[unit.replace(/s$/, '')] };
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (!cron) throw bad('expected rate(...) or cron(...)');
  const fields = cron[1].trim().split(/\s+/);
  if (fields.length !== 6) throw bad(`expected six fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`);
  const [minutes, hours, dayOfMonth, month, dayOfWeek, year] = fields.map((field) => field.toUpperCase());
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) throw bad('exactly one of day-of-month and day-of-week must be ?');
  const allowed: Array<[string, string, RegExp]> = [
    ['minutes', minutes, /^[\d,\-*/]+$/], ['hours', hours, /^[\d,\-*/]+$/], ['day-of-month', dayOfMonth, /^[\d,\-*?/LW]+$/],
    ['month', month, /^[\dA-Z,\-*/]+$/], ['day-of-week', dayOfWeek, /^[\dA-Z,\-*?L#]+$/], ['year', year, /^[\d,\-*/]+$/],
  ];
  for (const [name, value, pattern] of allowed) if (!pattern.test(value)) throw bad(`invalid ${name} field "${value}"`);
  const pattern = ['0', steps(minutes, 59), steps(hours, 23), dayOfMonth === '?' ? '*' : steps(dayOfMonth, 31),
    steps(names(month, MONTHS, 1, bad), 12), dayOfWeek === '?' ? '*' : weekdays(dayOfWeek, bad)].join(' ');
  checkYears(year, bad);
  return { kind: 'cron', pattern, years: year };
}

/** Refuses a cron expression node-cron cannot run (e.g. some L/W/# forms), naming it. */
export async function checkCron(expression: string): Promise<void> {
  const parsed = parseSchedule(expression);
  if (parsed.kind !== 'cron') return;
  const { validateDetailed } = await import('node-cron');
  const result = validateDetailed(parsed.pattern);
  if (!result.valid) {
    const detail = result.errors.map((error) => error.message).join('; ');
    throw new Error(`${expression}: not supported by Outpost's scheduler${detail ? ` (${detail})` : ''}`);
  }
}

/** EventBridge's `a/b` (start a, every b) as a range node-cron reads: `a-max/b`. */
function steps(field: string, max: number): string {
  return field.split(',').map((part) => part.replace(/^(\d+)\/(\d+)$/, `$1-${max}/$2`)).join(',');
}

/** Month or day names as numbers (JAN = 1, SUN = 1). */
function names(field: string, list: string[], first: number, bad: (why: string) => Error): string {
  return field.replace(/[A-Z]{2,}/g, (name) => {
    const index = list.indexOf(name);
    if (index < 0) throw bad(`unknown name "${name}"`);
    return String(index + first);
  });
}

/** EventBridge's days 1-7 (SUN-SAT) as node-cron's 0-6; `L` alone is the last day of the week (Saturday). */
function weekdays(field: string, bad: (why: string) => Error): string {
  if (field === 'L') return '6';
  const numbered = names(field, DAYS, 1, bad);
  if (numbered.includes('/')) throw bad('/ is not allowed in the day-of-week field');
  if (numbered.includes('#') && numbered.includes(',')) throw bad('a day-of-week with # holds one expression only');
  return numbered.replace(/\d+/g, (day, offset: number, whole: string) => {
    // The part after # is the occurrence in the month, not a day.
    if (whole[offset - 1] === '#') return day;
    const n = Number(day);
    if (n < 1 || n > 7) throw bad(`day-of-week ${day} is outside 1-7`);
    return String(n - 1);
  });
}

function checkYears(field: string, bad: (why: string) => Error): void {
  for (const part of field.split(',')) {
    const match = /^(\*|\d{4}(?:-\d{4})?)(?:\/(\d+))?$/.exec(part);
    if (!match) throw bad(`invalid year field "${field}"`);
    for (const year of match[1].split('-')) if (year !== '*' && (Number(year) < 1970 || Number(year) > 2199)) throw bad(`year ${year} is outside 1970-2199`);
  }
}

/** Whether `year` matches EventBridge's year field (node-cron has no year). */
export function yearMatches(field: string, year: number): boolean {
  return field.split(',').some((part) => {
    const [range, step] = part.split('/');
    const [low, high] = range === '*' ? [1970, 2199] : range.includes('-') ? range.split('-').map(Number) : [Number(range), step ? 2199 : Number(range)];
    return year >= low && year <= high && (year - low) % Number(step ?? 1) === 0;
  });
}

/** The event EventBridge sends a scheduled rule's target. */
export function scheduledEvent(rule: string, now: Date, region: string, account: string): string {
  return JSON.stringify({
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account,
    // EventBridge's time has no milliseconds.
    time: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [`arn:aws:events:${region}:${account}:rule/${rule}`],
    detail: {},
  });
}

interface Stoppable { stop(): void }


/**
 * Calls `fn` every `ms` milliseconds (any length), first after `ms`, on the monotonic clock: a
 * board without a real-time clock has its wall clock stepped by NTP, which must neither stall
 * a rate (a step back) nor bring its next firing forward.
 */
function every(ms: number, fn: () => void): Stoppable {
  let timer: NodeJS.Timeout | undefined;
  // rate(30 days) waits in steps of MAX_TIMER_MS
  let due = performance.now() + ms;
  const arm = () => {
    timer = setTimeout(() => {
      const now = performance.now();
      if (now >= due) {
        // After a stall (a suspended board), one firing and back on the beat: no burst of missed ones.
        due = due + ms > now ? due + ms : now + ms;
        fn();
      }
      arm();
    }, Math.min(MAX_TIMER_MS, Math.max(0, due - performance.now()))).unref();
  };
  arm();
  return { stop: () => clearTimeout(timer) };
}

/**
 * Calls `fn` with each wall-clock minute `matches`, looked at once a minute on the minute: a step
 * of the clock is followed within a minute, and the minutes it skips are not made up (node-cron
 * lists every minute it missed, in one go: a year's step took a board's whole heap).
 */
function everyMatchingMinute(matches: (minute: Date) => boolean, fn: (minute: Date) => void): Stoppable {
  let timer: NodeJS.Timeout | undefined;
  let lastMinute: number | undefined;
  const arm = () => {
    const now = Date.now();
    timer = setTimeout(tick, MINUTE_MS - (now % MINUTE_MS)).unref();
  };
  const tick = () => {
    const minute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
    if (minute !== lastMinute) {
      lastMinute = minute;
      const date = new Date(minute);
      if (matches(date)) fn(date);
    }
    arm();
  };
  arm();
  return { stop: () => clearTimeout(timer) };
}

const MINUTE_MS = 60_000;

/**
 * The schedules of the deployed functions: `rate` ones on a timer from the deploy (or daemon
 * start) on, `cron` ones with node-cron in UTC, loaded only when a cron schedule exists. Each firing
 * is handed to `fire` (an asynchronous invocation through the durable queue).
 *
 * `clockScale` (config `functions.scheduleClockScale`, for tests) divides rate intervals:
 * 60 makes `rate(1 minute)` fire every second. Cron expressions name wall-clock times and ignore it.
 */
export class Schedules {
  private readonly running = new Map<string, Stoppable[]>();
  /** The latest set() of each function: an older one still loading node-cron gives way. */
  private readonly tokens = new Map<string, number>();
  private counter = 0;

  constructor(
    private readonly clockScale: number,
    private readonly log: Logger,
    private readonly fire: (name: string, schedule: ScheduleSpec, now: Date) => void,
  ) {}

  /** Replaces the function's schedules. */
  async set(name: string, schedules: ScheduleSpec[]): Promise<void> {
    this.remove(name);
    if (schedules.length === 0) return;
    const token = ++this.counter;
    this.tokens.set(name, token);
    const started: Stoppable[] = [];
    for (const schedule of schedules) {
      let parsed: ParsedSchedule;
      try {
        parsed = parseSchedule(schedule.expression);
      } catch (error) {
        this.log.warn({ function: name, schedule: schedule.expression, reason: (error as Error).message }, 'schedule not started');
        continue;
      }
      if (parsed.kind === 'rate') {
        started.push(every(Math.max(1, Math.round(parsed.ms / this.clockScale)), () => this.fire(name, schedule, new Date())));
      } else {
        // node-cron matches the expression; the minutes are counted here (everyMatchingMinute)
        const { createTask } = await import('node-cron');
        const { years } = parsed;
        const matcher = createTask(parsed.pattern, () => undefined, { timezone: 'UTC', name: `${schedule.rule}` });
        const minutes = everyMatchingMinute((minute) => matcher.match(minute) && yearMatches(years, minute.getUTCFullYear()),
          (minute) => this.fire(name, schedule, minute));
        // node-cron keeps every task it made in a registry until it is destroyed
        started.push({ stop: () => { minutes.stop(); void matcher.destroy(); } });
      }
    }
    // A newer set() or remove() for the same function happened while node-cron loaded.
    if (this.tokens.get(name) !== token) {
      for (const item of started) item.stop();
      return;
    }
    this.running.set(name, started);
  }

  remove(name: string): void {
    for (const item of this.running.get(name) ?? []) item.stop();
    this.running.delete(name);
    this.tokens.delete(name);
  }

  stop(): void {
    for (const name of [...this.running.keys()]) this.remove(name);
  }
}
