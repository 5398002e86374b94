import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';

/**
 * The cloud client id when cloud.mqtt.clientId is not set. Two gateways with one client id take the
 * session from each other for ever (MQTT-3.1.4-2), and gateways cloned from one SD-card image share
 * their host name, so it is made at random on the first start: `outpost` and 16 hex digits, within
 * the 23 characters of [0-9a-zA-Z] every MQTT 3.1.1 broker must accept (MQTT-3.1.3-5). It is kept in
 * the database (sync_state) with the machine id it was made on, and made again when the data
 * directory turns up on a machine of another machine id (a clone whose /etc/machine-id was emptied,
 * so that systemd made a new one). A clone of a gateway that had started, machine id included,
 * cannot be told from the original: see docs/sync.md.
 */
export function installationClientId(db: Database.Database, upgraded: boolean, log: Logger, used: boolean, machineId = readMachineId()): string {
  const read = db.prepare('SELECT value FROM sync_state WHERE key = ?').pluck();
  const stored = read.get('client_id') as string | undefined;
  const madeOn = read.get('client_id_machine') as string | undefined;
  if (stored !== undefined && (madeOn === machineId || madeOn === '' || machineId === '')) return stored;
  let clientId: string;
  if (stored !== undefined) {
    clientId = `outpost${randomBytes(8).toString('hex')}`;
    log.warn({ clientId, was: stored }, 'this data directory was made on another machine (its machine id differs): a new cloud client id, so that the two do not take over each other\'s session');
  } else if (upgraded) {
    // the default of earlier versions, kept: a new client id would lose the session the cloud keeps
    clientId = `outpost-${hostname()}`;
  } else {
    clientId = `outpost${randomBytes(8).toString('hex')}`;
    // told only when the link will use it: not with cloud.mqtt.clientId set, nor without a cloud
    if (used) log.info({ clientId }, 'made the cloud client id of this installation (cloud.mqtt.clientId sets one)');
  }
  const write = db.prepare('INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  db.transaction(() => {
    write.run('client_id', clientId);
    write.run('client_id_machine', machineId);
  })();
  return clientId;
}

/** systemd's /etc/machine-id (D-Bus's copy where it is not); '' where there is none. `OUTPOST_TEST_MACHINE_ID` is for the tests only. */
function readMachineId(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OUTPOST_TEST_MACHINE_ID) return env.OUTPOST_TEST_MACHINE_ID;
  for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      // the next one
    }
  }
  return '';
}
