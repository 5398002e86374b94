import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { adminRequest, connectClient } from './helpers/mqtt.js';

/** Whether the daemon's admin API answers on its socket. */
async function answersOn(socket: string): Promise<boolean> {
  return (await adminRequest(socket, 'GET', '/v1/status'))?.status === 200;
}

describe('outpostd process', () => {
  it('serves /healthz and Prometheus /metrics', async () => {
    const daemon = await TestDaemon.start({ config: {} });
    try {
      const base = `http://127.0.0.1:${daemon.port('http')}`;
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', services: { broker: { ok: true } } });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      for (const name of ['outpost_mqtt_connections', 'outpost_mqtt_messages_received_total', 'outpost_mqtt_bytes_received',
        'outpost_mqtt_dropped_total', 'outpost_db_size_bytes', 'outpost_process_resident_memory_bytes', 'outpost_nodejs_eventloop_lag_seconds']) {
        expect(metrics).toContain(name);
      }
      // prom-client's other process figures too, but not its GC histogram, whose observer made every collection dearer (metrics/registry.ts)
      for (const name of ['outpost_process_cpu_seconds_total', 'outpost_process_open_fds', 'outpost_nodejs_heap_size_used_bytes', 'outpost_nodejs_active_handles', 'outpost_nodejs_version_info']) {
        expect(metrics).toContain(name);
      }
      expect(metrics).not.toContain('outpost_nodejs_gc_duration_seconds');
      // the event loop's delay, not the interval it is sampled at (1 s) with it: an idle daemon's is a
      // few ms (the scrape above ended the samples of its start)
      await new Promise((resolve) => setTimeout(resolve, 3500));
      const idle = await (await fetch(`${base}/metrics`)).text();
      for (const figure of ['min', 'max', 'p50', 'p99']) {
        expect(Number(new RegExp(`^outpost_nodejs_eventloop_lag_${figure}_seconds (\\S+)$`, 'm').exec(idle)?.[1]), figure).toBeLessThan(0.5);
      }
      // the space left where the data directory and the share root are (both in the test's temporary directory)
      for (const name of ['outpost_data_dir_free_bytes', 'outpost_s3_share_free_bytes']) {
        expect(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1])).toBeGreaterThan(0);
      }
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await daemon.cleanup();
    }
  });

  it('sleeps when idle: its event loop wakes a few times a second at most, not a hundred', async () => {
    const daemon = await TestDaemon.start({ config: {} });
    try {
      // each wake-up of the main thread from epoll_wait is one voluntary context switch
      const wakeUps = () => Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${daemon.process.pid}/task/${daemon.process.pid}/status`, 'utf8'))![1]);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const before = wakeUps();
      await new Promise((resolve) => setTimeout(resolve, 5000));
      expect(wakeUps() - before).toBeLessThan(50);
    } finally {
      await daemon.cleanup();
    }
  });

  it('stops on SIGTERM within 5 s with exit code 0, even with clients connected', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
    const client = await connectClient(daemon.mqttUrl, { clientId: 'lingering' });
    const started = Date.now();
    expect(await daemon.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(daemon.logs.some((entry) => entry.msg === 'stopped')).toBe(true);
    client.end(true);
    await daemon.cleanup();
  });

  it('refuses to start on a port in use, with a clear error', async () => {
    const first = await TestDaemon.start({ config: {} });
    try {
      await expect(TestDaemon.start({ config: { mqtt: { port: first.port('mqtt') } } })).rejects.toThrow(/exited with 1/);
    } finally {
      await first.cleanup();
    }
  });

  it('refuses to start on a data directory another daemon runs on, and leaves that one alone', async () => {
    const first = await TestDaemon.start({ config: {} });
    try {
      // other ports (all 0), same database and same admin socket path
      const second = TestDaemon.start({ dataDir: first.dataDir, config: {} });
      await expect(second).rejects.toThrow(/exited with 1/);
      await expect(second).rejects.toThrow(`another outpostd is running on ${first.dataDir}`);
      expect(await answersOn(first.socket)).toBe(true);
      expect(first.logs.some((entry) => entry.level >= 50)).toBe(false);
    } finally {
      await first.cleanup();
    }
  });

  it('starts on the data directory of a daemon killed with -9 (its lock and socket are gone with it)', async () => {
    const first = await TestDaemon.start({ config: {} });
    await first.kill();
    const second = await TestDaemon.start({ dataDir: first.dataDir, config: {} });
    try {
      expect(await answersOn(second.socket)).toBe(true);
    } finally {
      await second.cleanup();
    }
  });

  it('refuses to take over the admin socket of a daemon that answers on it', async () => {
    const first = await TestDaemon.start({ config: {} });
    const otherDataDir = mkdtempSync(join(tmpdir(), 'outpost-test-'));
    try {
      const second = TestDaemon.start({ dataDir: otherDataDir, config: { admin: { socket: first.socket } } });
      await expect(second).rejects.toThrow(/exited with 1/);
      await expect(second).rejects.toThrow(`another outpostd is running: its admin socket ${first.socket} answers`);
      expect(await answersOn(first.socket)).toBe(true);
    } finally {
      await first.cleanup();
      rmSync(otherDataDir, { recursive: true, force: true });
    }
  });

  it('names admin.group when it cannot give the socket to it', async () => {
    await expect(TestDaemon.start({ config: { admin: { group: 'no-such-outpost-group' } } })).rejects.toThrow('admin.group no-such-outpost-group: no such group');
  });
});
