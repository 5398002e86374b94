import type { Command } from 'commander';
import { failIfSkipped, UsageError } from '../admin-client.js';
import type { CliContext } from '../context.js';
import { integerOption } from '../options.js';
import { formatBytes, formatDuration, formatTable } from '../table.js';
import type { SyncStatus } from '../../sync/status.js';
import type { UploadStatus } from '../../sync/objects/uploader.js';
import type { DeadLetter } from '../../sync/outbox.js';

interface RetryOutcome { retried: number[]; skipped: Array<{ id: number; reason: string }> }

const orDash = (value: string | number | null | undefined) => (value === null || value === undefined ? '-' : value);
const eta = (seconds: number | null) => (seconds === null ? 'stalled' : formatDuration(seconds));

function statusText(status: SyncStatus): string {
  const link = !status.enabled ? `no cloud broker configured (cloud.mqtt.url): buffering only; client id ${status.clientId}`
    : `${status.online ? 'online' : 'offline'} since ${status.since} as ${status.clientId}${status.online ? '' : whyAndWhen(status.lastError, status.nextAttempt)}${limitsText(status.cloudLimits)}`;
  const head = [
    `cloud     ${link}`,
    `sending   ${status.paused ? 'paused (outpost sync resume)' : 'running'}, ${status.inFlight} in flight${status.suspect === null ? ''
      : `; item ${status.suspect} goes alone first (the cloud closed a connection with it unacknowledged)`}`,
    `outbox    ${status.outbox.items} items, ${formatBytes(status.outbox.bytes)} of ${formatBytes(status.outbox.maxBytes)}; ${status.deadLetters} dead letters`,
    ...(status.uploads ? [uploadsText(status.uploads)] : []),
  ].join('\n');
  const lanes = formatTable(['LANE', 'ITEMS', 'BYTES', 'RATE/S', 'ETA'],
    status.lanes.map((lane) => [lane.lane, lane.items, formatBytes(lane.bytes), lane.drainRate, eta(lane.etaSeconds)]));
  const rules = formatTable(['RULE', 'BACKLOG', 'BYTES', 'OLDEST', 'DELIVERED', 'DROPPED', 'REJECTED', 'EXPIRED', 'DLQ', 'LAST SUCCESS', 'LAST FAILURE'],
    status.rules.map((rule) => [rule.rule, rule.backlog, formatBytes(rule.backlogBytes), rule.oldestAgeSeconds === null ? '-' : formatDuration(rule.oldestAgeSeconds),
      rule.delivered, rule.dropped, rule.rejected, rule.expired, rule.deadLettered, orDash(rule.lastSuccess),
      rule.lastFailure ? `${rule.lastFailure.at} ${rule.lastFailure.reason}` : '-']));
  const inbound = status.inbound.length === 0 ? '' : `\n${formatTable(['INBOUND', 'DELIVERED', 'FAILURES', 'LAST SUCCESS', 'LAST FAILURE'],
    status.inbound.map((rule) => [rule.rule, rule.delivered, rule.failures, orDash(rule.lastSuccess),
      rule.lastFailure ? `${rule.lastFailure.at} ${rule.lastFailure.reason}` : '-']))}`;
  const shadows = status.shadows.length === 0 ? '' : `\n${formatTable(['THING', 'SHADOW', 'DIRECTION', 'LAST SYNC', 'LAST ERROR', 'NEXT ATTEMPT'],
    status.shadows.map((s) => [s.thing, s.name ?? '(classic)', s.direction, orDash(s.lastSync), orDash(shadowError(s)), orDash(s.nextAttempt)]))}`;
  return `${head}\n\n${lanes}\n${rules}${inbound}${shadows}`;
}

/** A shadow's last error, and the changes either side refused for good while they are left out. */
function shadowError(shadow: SyncStatus['shadows'][number]): string | null {
  const setAside = [
    ...(shadow.refusedChanges.length === 0 ? [] : [`not synced, refused by the cloud: ${shadow.refusedChanges.join(', ')}`]),
    ...(shadow.refusedByDevice.length === 0 ? [] : [`not synced, refused by the device: ${shadow.refusedByDevice.join(', ')}`]),
  ];
  const said = [...(shadow.lastError ? [shadow.lastError] : []), ...setAside];
  return said.length === 0 ? null : said.join('; ');
}

/** An offline link's (or store's) last error and next attempt, if known. */
function whyAndWhen(lastError: string | null, nextAttempt: string | null): string {
  const said = [...(lastError ? [lastError] : []), ...(nextAttempt ? [`next attempt ${nextAttempt}`] : [])];
  return said.length === 0 ? '' : ` (${said.join('; ')})`;
}

/** The cloud's CONNACK limits that change what is sent, if any. */
function limitsText(limits: SyncStatus['cloudLimits']): string {
  const said = [
    ...(limits?.maximumQoS === 0 ? ['takes QoS 0 only: QoS 1 rules and shadow requests go at QoS 0'] : []),
    ...(limits?.maximumPacketSize ? [`packets up to ${limits.maximumPacketSize} bytes (larger messages are dead-lettered)`] : []),
  ];
  return said.length === 0 ? '' : `; the cloud ${said.join(', ')}`;
}

function uploadsText(uploads: UploadStatus): string {
  const state = uploads.online ? 'reachable' : uploads.refused ? 'refuses the uploads' : 'unreachable';
  // offline without an error: nothing asked of it yet (nothing to upload since the start)
  const link = !uploads.online && uploads.lastError === null ? 'not asked yet'
    : `${state} since ${uploads.since}${uploads.online ? '' : whyAndWhen(uploads.lastError, uploads.nextAttempt)}`;
  const inFlight = uploads.inFlight.map((upload) => `${upload.object} (${formatBytes(upload.sentBytes)} of ${formatBytes(upload.size)})`);
  const uploading = inFlight.length === 0 ? '' : `; uploading ${inFlight.join(', ')}`;
  const refusedRules = uploads.refusedRules.map((refused) => `; refuses rule ${refused.rule}'s uploads since ${refused.since}${whyAndWhen(refused.reason, refused.nextAttempt)}`);
  return `cloud S3  ${link}; ${uploads.uploaded} uploaded, ${formatBytes(uploads.sentBytes)} sent, ${uploads.superseded} superseded${uploading}${refusedRules.join('')}`;
}

/** outpost sync status|pause|resume|dlq (issue 6). */
export function registerSync(program: Command, cli: CliContext): void {
  const sync = program.command('sync').description('the sync agent: durable outbox, bridge to the cloud broker, uploads to cloud S3, shadows both ways');

  sync.command('status')
    .description('link state, lanes and per-rule backlog, drops and dead letters')
    .action(async (_options, command: Command) => {
      const status = await cli.call<SyncStatus>(command, 'GET', '/v1/sync');
      cli.print(command, status, () => statusText(status));
    });

  sync.command('pause')
    .description('stop sending to the cloud (messages keep being buffered; survives restarts)')
    .action(async (_options, command: Command) => {
      const body = await cli.call(command, 'POST', '/v1/sync/pause');
      cli.print(command, body, () => 'sync paused');
    });

  sync.command('resume')
    .description('send again')
    .action(async (_options, command: Command) => {
      const body = await cli.call(command, 'POST', '/v1/sync/resume');
      cli.print(command, body, () => 'sync resumed');
    });

  const dlq = sync.command('dlq').description('items set aside for good: messages the cloud refused or that cannot be sent (too large, a bad topic), failed uploads');

  dlq.command('ls')
    .description('list dead letters, oldest first, with the reason')
    .option('-n, --limit <count>', 'at most this many (up to 10000)', integerOption(1, 10_000), 100)
    .action(async (options: { limit: number }, command: Command) => {
      const body = await cli.call<{ deadLetters: DeadLetter[] }>(command, 'GET', `/v1/sync/dlq?limit=${options.limit}`);
      cli.print(command, body, () => formatTable(['ID', 'RULE', 'TOPIC', 'BYTES', 'FAILED', 'REASON'],
        body.deadLetters.map((d) => [d.id, d.rule, d.cloudTopic, d.bytes, d.failedAt, d.reason])));
    });

  dlq.command('retry [id]')
    .description('put a dead letter back in the outbox by ID, or every one with --all')
    .option('--all', 'retry every dead letter')
    .action(async (id: string | undefined, options: { all?: boolean }, command: Command) => {
      let request: Record<string, unknown>;
      if (options.all && id !== undefined) throw new UsageError('give a dead-letter ID or --all, not both');
      if (options.all) request = { all: true };
      else if (id !== undefined && /^\d+$/.test(id)) request = { id: Number(id) };
      else throw new UsageError('expected a dead-letter ID, or --all');
      const body = await cli.call<RetryOutcome>(command, 'POST', '/v1/sync/dlq/retry', request);
      cli.print(command, body, () => `retried ${body.retried.length}`);
      failIfSkipped(body.skipped);
    });
}
