// The shadow service's own CPU per update, without the broker or sockets: the same requests as
// run.mjs's (reported-state updates over 1,000 things, 200 per event-loop turn as 20 clients × a
// window of 10 make them) go through the service's MQTT handler against a real Store (group commit
// with the fsync, as shipped) and a bus that only counts what it is handed. Figures are CPU µs per
// update of this process; run it while nothing else loads the machine for steadier ones.
//   node bench/shadows/in-process.mjs [--updates 100000] [--things 1000] [--batch 200]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchArgs } from '../lib/args.mjs';

const options = benchArgs(`usage: node bench/shadows/in-process.mjs [options]

The shadow service's own CPU per update, in this process: its MQTT handler against a real Store,
without the broker or sockets.`, {
  updates: { type: 'string', default: '100000', help: 'updates, measured' },
  things: { type: 'string', default: '1000', help: 'things they are spread over' },
  batch: { type: 'string', default: '200', help: 'updates per event-loop turn' },
});
const UPDATES = Number(options.updates);
const THINGS = Number(options.things);
const BATCH = Number(options.batch);
const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const load = (path) => import(pathToFileURL(join(DIST, path)).href);
const { Store } = await load('store/store.js');
const { ShadowMqtt } = await load('shadows/mqtt.js');
const { ShadowStore } = await load('shadows/store.js');
const { configSchema } = await load('config/schema.js');

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime+stime of this process's main thread (the JavaScript; the fsyncs run on the thread pool) in µs. */
function mainThreadUs() {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS_PER_SECOND;
}

/**
 * A bus that takes every publish at once and counts it, with run.mjs's subscribers: the clients
 * subscribe to `/accepted` and `/rejected`, nobody to `/documents`.
 */
class CountingBus {
  published = 0;
  bytes = 0;
  handlers = [];
  async publish(message) {
    this.published++;
    this.bytes += message.payload.length;
  }
  async subscribe(_filter, handler) {
    this.handlers.push(handler);
    return async () => {};
  }
  hasSubscribers(topic) {
    return topic.endsWith('/accepted') || topic.endsWith('/rejected');
  }
  thingMayPublish() {
    return true;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-shadows-in-process-'));
const store = new Store({ file: join(dir, 'outpost.db'), synchronous: 'full', cacheSizeKb: 2048 });
try {
  const { maxInFlightPerClient, ...limits } = configSchema.parse({}).shadows;
  const bus = new CountingBus();
  const logger = { error() {}, warn() {}, child() { return logger; } };
  const context = { shadows: new ShadowStore(store), commit: store.commit, limits, now: () => Math.floor(Date.now() / 1000) };
  const mqtt = new ShadowMqtt(bus, context, maxInFlightPerClient, logger);
  await mqtt.start();
  // The request filters are two; a classic shadow's update reaches the first one's handler.
  const [handle] = bus.handlers;
  const request = (sequence) => ({
    topic: `$aws/things/bench-thing-${sequence % THINGS}/shadow/update`,
    payload: Buffer.from(`{"state":{"reported":{"temperature":${20 + (sequence % 10)},"seq":${sequence}}},"clientToken":"${sequence}"}`),
    qos: 1,
    retain: false,
    clientId: `bench-${sequence % 20}`,
  });
  const run = async (from, count) => {
    for (let start = from; start < from + count; start += BATCH) {
      const turn = [];
      for (let sequence = start; sequence < Math.min(start + BATCH, from + count); sequence++) turn.push(handle(request(sequence)));
      await Promise.all(turn);
    }
  };
  await run(0, THINGS);
  const published0 = bus.published;
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadUs();
  const started = process.hrtime.bigint();
  await run(THINGS, UPDATES);
  const cpu = process.cpuUsage(cpu0);
  const main = mainThreadUs() - main0;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await mqtt.stop();
  process.stdout.write(`${UPDATES} updates, ${BATCH} per turn: ${((cpu.user + cpu.system) / UPDATES).toFixed(1)} µs CPU per update, main thread ${(main / UPDATES).toFixed(1)} `
    + `(${Math.round(UPDATES / seconds).toLocaleString('en')} updates/s in this process alone; ${((bus.published - published0) / UPDATES).toFixed(2)} publishes per update)\n`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
